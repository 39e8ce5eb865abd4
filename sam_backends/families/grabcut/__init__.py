"""OpenCV GrabCut: the baseline that needs no weights and no torch."""
