"""``POST /v1/video``'s request and result bodies (strict, as ``schemas``).

Field names and defaults follow the hosted video-segmentation API where they apply
(``prompt``, ``output_format``, ``threshold``, ``frame_stride``, ``start_time``, ``end_time``,
``max_frames``, ``re_detect_every`` = 30, ``mask_color``, ``mask_opacity``); where this server
differs, and why:

* ``prompt`` is optional: ``objects`` (points/boxes per object and frame, as ``/v1/segment``
  takes them plus ``id``, ``name`` and ``frame``) may be given instead, for clips where words
  cannot name the thing.
* ``fps`` (the output's frame rate) and ``prompt_propagation`` are not taken: outputs keep the
  processed frames' own rate, and a prompt always propagates through the whole selected part.
  Sending them is refused (422), never silently ignored.
* ``output_format`` ``coco_rle`` is standard COCO JSON (one image per processed frame, RLE
  masks with ``track_id``), readable by ``pycocotools``.
* ``frame_stride`` 0 (the default) means "about 5 processed frames a second", as the Video
  view; ``max_frames`` 0 means the server's limit.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr, model_validator

from server.rest.schemas import MAX_IMAGE_FIELD, Number, ObjectPrompt, Strict

MAX_VIDEO_OBJECTS = 16


class VideoObjectPrompt(ObjectPrompt):
    """One object's points and/or box on one processed frame."""

    id: Annotated[StrictInt, Field(ge=1, le=10_000)]
    name: StrictStr | None = Field(default=None, max_length=100)
    frame: Annotated[StrictInt, Field(ge=0)] = Field(
        default=0, description="index among the processed frames (after stride and start)")


class VideoRequest(Strict):
    """``POST /v1/video`` (JSON); with multipart, the clip is the ``file`` part and these fields
    (without ``video``) are the ``request`` part, a JSON text."""

    kind: Literal["video"] = "video"
    video: StrictStr | None = Field(
        default=None, max_length=MAX_IMAGE_FIELD,
        description="a data: URI (data:video/mp4;base64,...) or, where the operator allows URL "
                    "fetching, an https:// URL")
    prompt: StrictStr | None = Field(
        default=None, max_length=1000,
        description="what to find and track, e.g. \"person\" or \"dog, ball\"")
    objects: Annotated[list[VideoObjectPrompt], Field(max_length=MAX_VIDEO_OBJECTS)] = []
    model: StrictStr | None = Field(default=None, max_length=64,
                                    description="a tracking model id from GET /v1/models")
    detector: Literal["auto", "sam3", "owlv2", "sam3-video"] = Field(
        default="auto", description="finds the prompt's instances: SAM 3 where offered and "
                                    "downloaded (auto), else OWLv2; \"sam3-video\": SAM 3's "
                                    "own video model detects on every frame and tracks by "
                                    "itself (leave model out; re_detect_every does not apply)")
    output_format: Literal["mp4", "frames", "masks", "coco_rle"] = "mp4"
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        default=0.3, description="score a detection needs")
    frame_stride: Annotated[StrictInt, Field(ge=0, le=10_000)] = Field(
        default=0, description="keep every n-th frame; 0: about 5 frames a second")
    start_time: Annotated[Number, Field(ge=0.0)] = 0.0
    end_time: Annotated[Number, Field(ge=0.0)] | None = Field(
        default=None, description="seconds; default: the end of the clip")
    max_frames: Annotated[StrictInt, Field(ge=0)] = Field(
        default=0, description="processed frames at most; 0: the server's limit")
    re_detect_every: Annotated[StrictInt, Field(ge=0, le=1_000_000_000)] = Field(
        default=30, description="re-run the detector every n processed frames (new objects "
                                "get new ids); 0: on the first frame only")
    mask_color: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")] | None = None
    mask_opacity: Annotated[float, Field(ge=0.0, le=1.0)] | None = None

    @model_validator(mode="after")
    def _prompt_or_objects(self) -> VideoRequest:
        if (self.prompt is None) == (not self.objects):
            raise ValueError("give either prompt (words) or objects (points/boxes), not both "
                             "and not neither")
        return self


class VideoFrameRecord(Strict):
    frame: int
    time_s: float
    box: list[int] = Field(description="[x0, y0, x1, y1] of the mask, pixels")
    area: int
    score: float | None = Field(default=None,
                                description="the detector's score where it found the object")


class VideoObjectRecord(Strict):
    id: int
    name: str
    first_frame: int | None = None
    ended_at: int | None = Field(default=None, description="frame where it was lost, if it was")
    frames: list[VideoFrameRecord]


class VideoResult(Strict):
    """A finished video job: the file (``GET /v1/files/{token}``) and what it shows."""

    model: str
    output_format: str
    file_url: str
    media_type: str
    file_bytes: int
    num_frames: int
    fps: float
    width: int
    height: int
    found_nothing: bool = Field(description="words that found nothing: an empty, successful "
                                            "result")
    capped_frames: list[int] = Field(default=[], description=(
        "frames where more instances were found than the per-frame cap (50) allows"))
    objects: list[VideoObjectRecord]
    timings: dict[str, float]
