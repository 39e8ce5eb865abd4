"""Values that cross the engine's boundary: prompts in, embeddings and predictions out.

Coordinate frame everywhere: original-image pixels, ``(x, y)``; boxes are XYXY.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import PromptError

Point = tuple[float, float]
Box = tuple[float, float, float, float]

LOW_RES_SIZE = 256  # side of the decoder's low-resolution logits, for SAM 1 and SAM 2


def _finite(value: float, what: str) -> float:
    """``value`` as a finite float. Strings and booleans are refused although ``float`` takes
    them: ``"100"`` or ``True`` as a coordinate is a caller's mistake, not a pixel."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise PromptError(f"{what} must be a number, got {type(value).__name__} {value!r:.40}.")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    except (TypeError, ValueError):
        raise PromptError(f"{what} must be a number, got {value!r:.40}.") from None
    if not math.isfinite(number):
        raise PromptError(f"{what} is {number}; coordinates must be finite numbers.")
    return number


@dataclass(frozen=True)
class Prompts:
    """What the user asked for on one object.

    Attributes:
        points: ``(x, y)`` pixel coordinates in the original image.
        labels: one per point; 1 = foreground, 0 = background.
        box: ``(x0, y0, x1, y1)`` or None. An inverted box is normalised on construction.
        mask_input: a previous prediction's low-res logits (1x256x256 float32) to refine, or None.
        multimask: ask for three candidate masks instead of one.

    Construction validates types, finiteness and label count and raises ``PromptError``;
    whether coordinates lie inside a given image is checked by ``validate_for_image``.
    """

    points: Sequence[Point] = ()
    labels: Sequence[int] = ()
    box: Box | None = None
    mask_input: np.ndarray | None = field(default=None, compare=False, repr=False)
    multimask: bool = False

    def __post_init__(self) -> None:
        points = tuple(self._point(i, p) for i, p in enumerate(self.points))
        labels = tuple(self._label(i, lab) for i, lab in enumerate(self.labels))
        if len(points) != len(labels):
            raise PromptError(
                f"Got {len(points)} point(s) but {len(labels)} label(s); give exactly one label "
                "(1 = foreground, 0 = background) per point."
            )
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "box", self._box(self.box))
        object.__setattr__(self, "mask_input", self._mask(self.mask_input))
        object.__setattr__(self, "multimask", bool(self.multimask))

    @staticmethod
    def _point(index: int, point: Any) -> Point:
        if not isinstance(point, (Sequence, np.ndarray)) or len(point) != 2:
            raise PromptError(f"Point {index} must be an (x, y) pair, got {point!r}.")
        return (_finite(point[0], f"Point {index} x"), _finite(point[1], f"Point {index} y"))

    @staticmethod
    def _label(index: int, label: Any) -> int:
        if isinstance(label, (bool, np.bool_)) or label not in (0, 1):
            raise PromptError(
                f"Label {index} is {label!r}; use 1 for foreground or 0 for background."
            )
        return int(label)

    @staticmethod
    def _box(box: Any) -> Box | None:
        if box is None:
            return None
        if not isinstance(box, (Sequence, np.ndarray)) or len(box) != 4:
            raise PromptError(f"A box must be (x0, y0, x1, y1), got {box!r}.")
        x0, y0, x1, y1 = (_finite(v, "Box coordinate") for v in box)
        x0, x1 = min(x0, x1), max(x0, x1)
        y0, y1 = min(y0, y1), max(y0, y1)
        return (x0, y0, x1, y1)

    @staticmethod
    def _mask(mask: Any) -> np.ndarray | None:
        if mask is None:
            return None
        array = np.asarray(mask, dtype=np.float32)
        if array.shape == (LOW_RES_SIZE, LOW_RES_SIZE):
            array = array[None]
        if array.shape != (1, LOW_RES_SIZE, LOW_RES_SIZE):
            raise PromptError(
                f"mask_input must be one low-res logit map of shape 1x{LOW_RES_SIZE}x{LOW_RES_SIZE}"
                f" (a previous prediction's low_res_logits[i]), got shape {array.shape}."
            )
        if not np.isfinite(array).all():
            raise PromptError("mask_input contains NaN or infinite values.")
        array.setflags(write=False)
        return array

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to segment from (no point, no box)."""
        return not self.points and self.box is None

    def validate_for_image(self, image_size: tuple[int, int]) -> None:
        """Raise ``PromptError`` unless every point and the box lie inside an H x W image.

        A box may touch the far edges (x == W is the right border of the last pixel).
        """
        height, width = image_size
        if self.is_empty:
            raise PromptError("No prompt given: click a point or draw a box on the object.")
        for i, (x, y) in enumerate(self.points):
            if not (0 <= x < width and 0 <= y < height):
                raise PromptError(
                    f"Point {i} at ({x:g}, {y:g}) is outside the {width}x{height} image; "
                    f"x must be in [0, {width}) and y in [0, {height})."
                )
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                raise PromptError(
                    f"Box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) reaches outside the {width}x{height} "
                    "image; draw it inside the image."
                )
            if x1 - x0 < 1 or y1 - y0 < 1:
                raise PromptError("The box is empty (zero width or height); drag a larger box.")


@dataclass(frozen=True)
class Embedding:
    """The image encoder's output for one image and model: computed once, decoded many times.

    ``features`` is backend-specific (tensors for SAM, the image itself for GrabCut) and opaque
    to callers. The value is immutable and holds no reference to the backend, so one embedding
    can be shared between sessions and threads.
    """

    model_id: str
    precision: str
    original_size: tuple[int, int]  # (H, W) of the image as the user sees it
    input_size: tuple[int, int]  # (H, W) after resizing for the encoder
    features: Mapping[str, Any] = field(repr=False)
    nbytes: int = 0
    encode_seconds: float = 0.0


@dataclass(frozen=True, eq=False)
class Prediction:
    """Masks for one object.

    Full-resolution masks are made on demand, one candidate at a time: the backend upscales
    the best-scoring mask before ``predict`` returns (it is what a user sees first), and
    ``mask(i)`` upscales another candidate only when asked (a 1800x1200 mask costs about 1 ms
    on a CPU core, so an unchosen candidate should cost nothing). ``masks`` gives all of them.

    Attributes:
        scores: float32, C; the model's predicted IoU for each mask (C = 1, or 3 with
            multimask).
        low_res_logits: float32, C x 256 x 256; pass ``low_res_logits[i:i+1]`` back as
            ``Prompts.mask_input`` to refine mask i.
        decode_seconds: wall time of ``predict``, the best mask's upscaling included.
        mask_source: index -> bool H x W mask at the original resolution (called at most once
            per index).
        ready: masks already made, by index (filled in as ``mask`` makes them).
    """

    scores: np.ndarray
    low_res_logits: np.ndarray = field(repr=False)
    decode_seconds: float = 0.0
    mask_source: Callable[[int], np.ndarray] = field(default=None, repr=False)  # type: ignore
    ready: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def from_masks(
        cls, masks: np.ndarray, scores: np.ndarray, low_res_logits: np.ndarray,
        decode_seconds: float = 0.0,
    ) -> Prediction:
        """A prediction whose masks (C x H x W bool) are already made."""
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 3 or masks.shape[0] != len(scores):
            raise ValueError(f"masks must be C x H x W with C = {len(scores)}, got {masks.shape}")
        return cls(scores, low_res_logits, decode_seconds, masks.__getitem__)

    @property
    def count(self) -> int:
        return len(self.scores)

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.scores))

    def mask(self, index: int) -> np.ndarray:
        """Candidate ``index`` as a bool H x W mask (made on first use, then kept)."""
        if not -self.count <= index < self.count:
            raise IndexError(f"mask index {index} out of range for {self.count} masks")
        index %= self.count
        if index not in self.ready:
            if self.mask_source is None:
                raise ValueError("This Prediction has no mask source; make it with "
                                 "Prediction.from_masks or pass mask_source.")
            self.ready[index] = self.mask_source(index)
        return self.ready[index]

    @property
    def masks(self) -> np.ndarray:
        """All candidates, bool C x H x W (makes the ones not made yet)."""
        return np.stack([self.mask(i) for i in range(self.count)])
