"""SAM 3, through ``transformers``: text prompts, points and boxes."""
