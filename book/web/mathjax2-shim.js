// ipywidgets typesets widget labels with MathJax 2's API (MathJax.Hub.Queue); this
// site serves MathJax 3. Give MathJax 3 the one MathJax 2 call the widgets make.
(function () {
  function shim() {
    var mj = window.MathJax;
    if (mj && !mj.Hub) {
      mj.Hub = {
        Queue: function (job) {
          var element = Array.isArray(job) ? job[2] : undefined;
          if (window.MathJax.typesetPromise) {
            window.MathJax.typesetPromise(element ? [element] : undefined).catch(function () {});
          }
        },
      };
    }
  }
  shim();
  document.addEventListener("DOMContentLoaded", shim);
})();
