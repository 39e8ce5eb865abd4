"""``python -m sam_backends.evaluate``: the documented command, kept where README points.

The evaluation code lives in ``sam_backends.evaluation`` (``evaluate``, ``metrics``,
``ground_truth``, ``click_simulation``); this module only forwards to its ``main``.
"""

from .evaluation.evaluate import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
