"""segqual_lite: uncertainty maps and segmentation quality prediction.

A small, tested reproduction of DeVries & Taylor (2018), *Leveraging Uncertainty
Estimates for Predicting Segmentation Quality* (arXiv:1807.00502). Each module owns one
step of the data flow and names the chapter of the book that teaches it.
"""

__version__ = "0.1.0"
