"""Pieces of the page shared by the views: the prompt canvas, the model panel."""
