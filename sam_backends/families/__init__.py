"""Model families: one folder per family, each with the same entries.

``families/<name>/`` holds the family's backend module (``backend.py``), an optional fast path
(``fast.py``) and, in its ``__init__``, ``load()`` (what ``create_backend`` calls) and the
family's facts.
"""
