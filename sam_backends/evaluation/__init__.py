"""Measuring models on annotated images: ground truth, metrics, simulated clicks and the
``evaluate`` command (``python -m sam_backends.evaluate``)."""
