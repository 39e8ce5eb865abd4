"""Random-weight models built with the real builders, for tests and benchmarks.

Speed does not depend on weight values, so benchmarks on these are honest; mask quality with
random weights is meaningless, so tests compare against the reference implementation instead.

* ``random_models``: reduced-size SAM 1 / SAM 2.1 specs and checkpoints in the official format;
* ``text_models``: reduced-size SAM 3 and OWLv2 folders written with ``save_pretrained``.
"""
