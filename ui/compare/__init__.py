"""The Compare view: the same prompts answered by several models side by side."""
