"""SAM 1 (ViT-B/L/H), through the ``segment_anything`` package."""
