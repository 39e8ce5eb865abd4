"""workbench/segment."""
