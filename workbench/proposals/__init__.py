"""workbench/proposals."""
