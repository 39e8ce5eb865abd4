"""The prompt limits of this app: one ``Limits`` value, built once from the flags.

Why one value: the click route, the Gradio/MCP ``/segment`` endpoint, REST ``/v1/segment``,
the page's canvas and the OpenAPI document must agree on what a prompt may hold. Before, the
default of 64 points was written six times and REST refused the 65th point whatever
``--max-points`` said. Now ``AppContext.limits`` is built here from ``AppConfig`` (the CLI
flags) and every entrance reads it; the engine's JSON parser gets it as ``PromptLimits``.

The defaults are the engine's (``sam_backends.prompts.prompt_parsing``), so a number is written
once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sam_backends.prompts.prompt_parsing import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_JSON_CHARS,
    DEFAULT_MAX_POINTS,
    PromptLimits,
    too_many_points_message,
)
from workbench.errors import Refusal

if TYPE_CHECKING:
    from workbench.config import AppConfig

DEFAULT_MAX_OBJECTS = 16  # objects in one REST request (each is one decode)


@dataclass(frozen=True)
class Limits:
    """Bounds on one segment request, checked before any model work.

    Attributes:
        max_points: points per object (``--max-points``), on every entrance.
        max_prompt_chars: characters of a prompt JSON text (``/segment``, ``/track``).
        max_json_depth: nesting levels of that JSON text.
        max_objects: objects in one REST request.
    """

    max_points: int = DEFAULT_MAX_POINTS
    max_prompt_chars: int = DEFAULT_MAX_JSON_CHARS
    max_json_depth: int = DEFAULT_MAX_DEPTH
    max_objects: int = DEFAULT_MAX_OBJECTS

    def __post_init__(self) -> None:
        for name in ("max_points", "max_prompt_chars", "max_json_depth", "max_objects"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive whole number, got "
                                 f"{value!r}.")

    @classmethod
    def from_config(cls, config: AppConfig) -> Limits:
        """The limits the operator chose (``--max-points``, ``AppConfig.max_prompt_chars``)."""
        return cls(max_points=int(config.max_points),
                   max_prompt_chars=int(config.max_prompt_chars))

    def prompt_limits(self) -> PromptLimits:
        """The engine's parser bounds (``sam_backends.prompts.prompt_parsing.parse_prompts``)."""
        return PromptLimits(max_points=self.max_points, max_json_chars=self.max_prompt_chars,
                            max_depth=self.max_json_depth)

    def check_points(self, count: int, field: str | None = None) -> None:
        """Refuse an object of ``count`` points when it is over the cap (422, same words as
        the engine's parser, so every entrance says the same).

        Raises:
            Refusal: status 422, code ``too_many_points``.
        """
        if count > self.max_points:
            raise Refusal(422, "too_many_points", too_many_points_message(count, self.max_points),
                          field, title="Too many points")
