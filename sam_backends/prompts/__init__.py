"""Prompts from text: the ``points``/``box`` strings of the CLI and API (``prompt_parsing``)."""
