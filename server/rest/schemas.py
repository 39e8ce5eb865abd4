"""The REST API's request and response bodies: strict pydantic models, the contract of ``/v1``.

Strict means: unknown fields, wrong types (``"false"`` for a boolean, ``"100"`` for a number)
and out-of-range values are refused with 422 and the field named, before any work. Coordinates
are original-image pixels, ``(x, y)``; boxes are XYXY; masks come back as COCO RLE (``size``
[H, W], ``counts`` a string), as ``pycocotools`` writes them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from workbench.limits import DEFAULT_MAX_OBJECTS

# One type, not StrictInt | StrictFloat: a union puts its member's name into the error's
# location (objects.0.points.0.0.int). Strict floats take JSON integers, not "100" or NaN.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Point = Annotated[list[Number], Field(min_length=2, max_length=2)]
Box = Annotated[list[Number], Field(min_length=4, max_length=4)]
# Not Literal[0, 1]: pydantic lets true and 1.0 through a Literal even in strict mode.
Label = Annotated[StrictInt, Field(ge=0, le=1)]
MAX_OBJECTS = DEFAULT_MAX_OBJECTS
# Points per object are bounded by the app's ``Limits`` (``--max-points``), not here: the use
# case refuses the excess with the same message as every entrance (422 too_many_points), and
# ``server.rest.app`` writes the bound into the OpenAPI document as ``maxItems``. The body
# limit (413) bounds what pydantic reads before that.
MAX_IMAGE_FIELD = 40_000_000  # characters of a data: URI (the body limit applies first)

JobStatusWord = Literal["starting", "processing", "succeeded", "canceled", "failed"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ObjectPrompt(Strict):
    """One object: points (with labels, 1 = foreground, 0 = background), a box, or both."""

    points: list[Point] = Field(
        default=[], description="[x, y] pixels; at most the server's --max-points (maxItems)")
    labels: list[Label] | None = Field(
        default=None, description="one per point; default: all foreground (1)")
    box: Box | None = None

    @model_validator(mode="after")
    def _one_label_per_point(self) -> ObjectPrompt:
        if self.labels is not None and len(self.labels) != len(self.points):
            raise ValueError(f"got {len(self.points)} point(s) but {len(self.labels)} label(s); "
                             "give one label (1 = foreground, 0 = background) per point, or "
                             "leave labels out")
        return self


class SegmentRequest(Strict):
    """``POST /v1/segment`` (JSON). With multipart, the image is the ``file`` part and these
    fields (without ``image``/``image_id``) are the ``request`` part, a JSON text."""

    image: StrictStr | None = Field(
        default=None, max_length=MAX_IMAGE_FIELD,
        description="a data: URI (data:image/png;base64,...) or, where the operator allows "
                    "URL fetching, an https:// URL")
    image_id: StrictStr | None = Field(
        default=None, max_length=64, description="an id from POST /v1/images (same key)")
    model: StrictStr | None = Field(default=None, max_length=64,
                                    description="a model id from GET /v1/models")
    objects: Annotated[list[ObjectPrompt], Field(max_length=MAX_OBJECTS)] = []
    text: StrictStr | None = Field(default=None, max_length=1000,
                                   description="a text prompt, for text-capable models")
    everything: StrictBool = Field(default=False,
                                   description="segment everything (where the model can)")
    multimask: StrictBool = False
    # float (strict) takes JSON integers too (1 for 1.0) but not strings such as "0.5".
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        default=0.0, description="drop objects whose best score is below this (see dropped)")
    mask_color: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")] | None = Field(
        default=None, description="one overlay colour for every mask; default: each object "
                                  "its colour in the page's palette")
    mask_opacity: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(
        default=None, description="overlay fill opacity; default: the page's")
    overlay: StrictBool = True
    mask_only: StrictBool = Field(default=False,
                                  description="masks only: no overlay and no cut-outs")
    include_scores: StrictBool = True
    include_boxes: StrictBool = True
    cutout: Literal["none", "full", "cropped"] = Field(
        default="full", description="full: the image's size; cropped: the mask's box plus 5% "
                                    "of its size on each side")
    output: Literal["data_uri", "url"] = Field(
        default="data_uri", description="data_uri: PNGs inline; url: GET /v1/files/{token} "
                                        "links (same key, expiring)")


class RleMask(Strict):
    size: list[int]
    counts: str


class Candidate(Strict):
    """One of the candidate masks of a ``multimask`` request."""

    mask: RleMask
    area: int
    score: float | None = None


class SegmentedObject(Strict):
    index: int = Field(description="the object's position in the request's objects")
    mask: RleMask = Field(description="the best-scoring mask")
    area: int
    score: float | None = None
    box: list[float] | None = Field(
        default=None, description="XYXY pixel edges of the mask (None when the mask is empty)")
    cutout: str | None = Field(default=None, description="data: URI or download URL (PNG)")
    candidates: list[Candidate] | None = Field(
        default=None, description="with multimask: every candidate, best included")


class ImageInfo(Strict):
    id: str | None = None
    width: int
    height: int


class CacheInfo(Strict):
    embedding: Literal["hit", "miss"] = Field(
        description="hit: this image's embedding was cached, no encoder ran")
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int


class SegmentResponse(Strict):
    model: str
    image: ImageInfo
    objects: list[SegmentedObject]
    overlay: str | None = None
    timings: dict[str, float]
    cache: CacheInfo
    dropped: int = Field(default=0, description="objects left out: best score < threshold")


class ImageUploaded(Strict):
    id: str
    width: int
    height: int
    expires_in_s: int


class ImageFromUri(Strict):
    """``POST /v1/images`` as JSON (multipart: a ``file`` part)."""

    image: StrictStr = Field(max_length=MAX_IMAGE_FIELD)


class ModelRow(Strict):
    id: str
    name: str
    family: str
    present: bool
    custom: bool
    capabilities: list[str]


class JobRequest(Strict):
    """``POST /v1/jobs``: long work run in the background."""

    kind: Literal["segment"]
    request: SegmentRequest


class JobState(Strict):
    id: str
    kind: str
    status: JobStatusWord
    progress: float = Field(ge=0.0, le=1.0)
    result: SegmentResponse | VideoResult | None = None
    error: ErrorBody | None = None
    created_s: float
    expires_in_s: int | None = None


class ErrorDetail(Strict):
    code: str = Field(description="machine-readable, e.g. unauthorized, rate_limited, busy")
    message: str = Field(description="what happened and what to do, for a person")
    field: str | None = Field(default=None, description="the request field at fault, if any")


class ErrorBody(Strict):
    error: ErrorDetail


from server.rest.video_schemas import VideoResult  # noqa: E402 - it builds on this module

JobState.model_rebuild()
