"""Model families: one folder per family, each with the same entries.

``families/<name>/__init__.py`` holds the family's facts (``FAMILY``, a ``base.Family``) and
``load(spec, path, device, precision)`` (what ``create_backend`` calls; heavy imports happen
inside it); ``backend.py`` the backend; ``fast.py`` an optional fast precision; a family that
tracks video also has ``load_video()`` and ``start_video(tracker, video)`` (its session); one
with an upstream reference implementation (for parity tests and benchmarks) has
``upstream.py``. ``get_family(name)`` imports the folder on
first use, so adding a family is adding a folder (and its catalogue entries), not editing a
list.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from .base import Everything, Family, facts_of_model

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def family_module(name: str) -> ModuleType:
    """The package ``sam_backends.families.<name>`` (imported on first use; cheap: no torch).

    Raises:
        UnknownModelError: no such family folder (or a name that cannot be one).
    """
    from ..errors import UnknownModelError

    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UnknownModelError(f"{name!r} is not a model family name.")
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise UnknownModelError(
            f"Unknown model family {name!r}: there is no sam_backends/families/{name}/ folder."
        ) from None


def upstream_of(name: str) -> ModuleType:
    """``families/<name>/upstream.py``: the family's upstream reference (architecture builder,
    predictor, automatic generator, checkpoint layout), for tests and benchmarks.

    Raises:
        UnknownModelError: no such family; ValueError: the family has no upstream reference.
    """
    family_module(name)
    try:
        return importlib.import_module(f"{__name__}.{name}.upstream")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}.upstream":
            raise
        raise ValueError(f"The {name} family has no upstream reference model.") from None


def get_family(name: str) -> Family:
    """The facts of family ``name`` (``ModelSpec.family``)."""
    family = family_module(name).FAMILY
    if not isinstance(family, Family) or family.name != name:
        raise TypeError(f"sam_backends.families.{name}.FAMILY must be a Family named {name!r}.")
    return family


__all__ = ["Everything", "Family", "facts_of_model", "family_module", "get_family", "upstream_of"]
