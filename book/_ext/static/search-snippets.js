// Search snippets: maths as text. Sphinx builds each snippet from the text of the hit's
// page as fetched, where MathJax has not run; inline maths would read "\(\sigma\)".
(() => {
  const SYMBOLS = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε",
    theta: "θ", lambda: "λ", mu: "μ", pi: "π", rho: "ρ", sigma: "σ", tau: "τ",
    phi: "φ", omega: "ω", Sigma: "Σ", sum: "Σ", prod: "Π", cdot: "·", times: "×",
    le: "≤", leq: "≤", ge: "≥", geq: "≥", neq: "≠", approx: "≈", in: "∈",
    infty: "∞", to: "→", mid: "|", ldots: "…", dots: "…",
  };
  // Commands that only format their argument, or space: dropped, the argument kept.
  const FORMATTING = /\\(mathcal|mathbf|mathrm|mathbb|operatorname|text|textrm|hat|bar|tilde|left|right|big|Big|quad|qquad)\b|\\[,;!]/g;
  const plain = (tex) =>
    tex
      .replace(/^\s*\\\(|\\\)\s*$/g, "")
      .replace(FORMATTING, "")
      .replace(/\\([A-Za-z]+)/g, (_, name) => SYMBOLS[name] ?? name)
      .replace(/[{}]/g, "")
      .replace(/\s+/g, " ")
      .trim();
  const patch = () => {
    if (typeof Search === "undefined" || Search.mathsAsText) return;
    const original = Search.htmlToText;
    Search.htmlToText = (htmlString, anchor) => {
      const page = new DOMParser().parseFromString(htmlString, "text/html");
      page.querySelectorAll("div.math").forEach((el) => el.remove());
      page.querySelectorAll("span.math").forEach((el) => {
        el.textContent = plain(el.textContent);
      });
      return original(page.documentElement.outerHTML, anchor);
    };
    Search.mathsAsText = true;
  };
  patch();
  document.addEventListener("DOMContentLoaded", patch);
})();
