"""workbench/video."""
