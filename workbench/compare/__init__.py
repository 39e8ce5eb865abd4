"""workbench/compare."""
