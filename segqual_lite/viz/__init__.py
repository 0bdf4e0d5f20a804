"""The book's figures, by what they show:

* :mod:`~segqual_lite.viz.style`: the figure style (set on import), images, mask outlines,
  the paper's error overlay (green TP, red FP, blue FN), grids, code beside its equation;
* :mod:`~segqual_lite.viz.networks`: the U-Net's diagram and learning curve (chapter 02);
* :mod:`~segqual_lite.viz.maps`: uncertainty maps and the paper's Figure 2 (03-06, 10);
* :mod:`~segqual_lite.viz.quality`: Figure 3, risk-coverage, a metric per row, the shift
  test (10-12);
* :mod:`~segqual_lite.viz.comparisons`: forest plots and power curves (08, 10).

Every name is importable from ``segqual_lite.viz`` itself.
"""

from . import comparisons, maps, networks, quality, style
from .comparisons import *  # noqa: F403
from .maps import *  # noqa: F403
from .networks import *  # noqa: F403
from .quality import *  # noqa: F403
from .style import *  # noqa: F403

__all__ = [
    *style.__all__,
    *networks.__all__,
    *maps.__all__,
    *quality.__all__,
    *comparisons.__all__,
]
