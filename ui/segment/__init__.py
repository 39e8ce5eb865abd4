"""The Segment view: one image, click or box objects out of it."""
