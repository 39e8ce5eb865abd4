"""What the video view shows for a session: plain values for the page's components.

Pure functions of a ``VideoSession`` (no Gradio, no model), so they are unit-tested. The canvas
gets the frame as a display-size JPEG and each object's mask as a palette PNG, and draws them in
the browser (``workbench.canvas``); only the two-model comparison images are composed here
(``render_frame``, with the drawing spec). Text that includes user data (file and object names)
is HTML-escaped here.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from sam_backends.video import MaskTrack, Video
from workbench.canvas import CanvasObject, CanvasView, display_src, empty_value
from workbench.drawing import SPEC
from workbench.estimates import RunEstimate
from workbench.render import (
    Layer,
    compose,
    fit_size,
    resize_image,
    resize_nearest,
)
from workbench.segment.masks import encode_mask
from workbench.video.state import CompareRun, VideoSession
from workbench.video.timeline import build_timeline

COMPARE_SIDE = 640  # longest side of the two-model comparison images
HELP_HINT = ("click the object to add a point · drag a box · right-click or shift-click marks "
             "background")
EMPTY_HINT = "Upload a clip or pick the example on the left."


def frame_time(video: Video, index: int) -> float:
    """Seconds from the clip's first frame to selected frame ``index``."""
    stamps = video.timestamps_s
    return float(stamps[index]) if 0 <= index < len(stamps) else index / video.fps


def render_frame(frame: np.ndarray, masks: dict[int, np.ndarray], active: int | None = None,
                 max_side: int = COMPARE_SIDE) -> np.ndarray:
    """The frame (RGB uint8) at preview size with every object's mask drawn in its colour."""
    size = fit_size(*frame.shape[:2], max_side)
    base = resize_image(frame, size)
    layers = [Layer(resize_nearest(mask, size), SPEC.colour_for(object_id), object_id == active)
              for object_id, mask in sorted(masks.items())]
    return compose(base, layers)


def frame_masks(track: MaskTrack | None, frame: int) -> dict[int, np.ndarray]:
    if track is None or frame not in track:
        return {}
    return track[frame]


def canvas_value(session: VideoSession, hint: str | None = None) -> dict[str, Any]:
    """The browser canvas's value for the session's current frame: the frame as a display-size
    JPEG and every object's mask on it; the browser draws the masks (``workbench.canvas``)."""
    session.render_count += 1
    video = session.video
    if video is None:
        return empty_value(hint or EMPTY_HINT, session.render_count)
    index = min(max(0, session.frame), video.num_frames - 1)
    active = session.active
    prompts = active.on(index)
    masks = frame_masks(session.track, index)
    name = session.clip.name
    view = CanvasView(
        src=frame_src(session, index), size=tuple(video.size),
        name=html.escape(f"{name} · frame {index}"),
        alt=html.escape(f"{name} frame {index} with {len(masks)} mask(s)", quote=True),
        objects=tuple(CanvasObject(object_id, encode_mask(mask), object_id == active.object_id)
                      for object_id, mask in sorted(masks.items())),
        active=active.object_id,
        points=tuple((x, y, label) for (x, y), label in zip(prompts.points, prompts.labels)),
        box=tuple(prompts.box) if prompts.box is not None else None,
        hint=html.escape(hint) if hint else _hint(session, index),
    )
    return view.value(session.render_count)


def frame_src(session: VideoSession, index: int) -> str:
    """Frame ``index`` at display size as a data URL; the last one is kept, so clicks on one
    frame re-send it without encoding it again."""
    key = (session.generation, index)
    cached = session.display_src
    if cached is None or cached[0] != key:
        cached = (key, display_src(session.video.frame(index)))
        session.display_src = cached
    return cached[1]


def _hint(session: VideoSession, index: int) -> str:
    active = session.active
    name = html.escape(active.name)
    prompts = active.on(index)
    if prompts.is_empty:
        return f"{name} on frame {index}: {HELP_HINT}."
    return f"{name} on frame {index}: {prompts.describe()} · click again to refine"


def frame_label(session: VideoSession) -> str:
    video = session.video
    if video is None:
        return "No clip yet."
    index = session.frame
    tracked = "tracked" if session.track is not None and index in session.track else "not tracked"
    source = video.frame_indices[index] if index < len(video.frame_indices) else index
    return (f"Frame **{index}** of {video.num_frames - 1} · {frame_time(video, index):.2f} s "
            f"(source frame {source}) · {tracked}")


def info_markdown(session: VideoSession) -> str:
    """The clip's length, rate and size, and which frames will be processed."""
    clip = session.clip
    if clip is None:
        return "No clip yet."
    video, selection = clip.video, clip.selection
    span_end = frame_time(video, video.num_frames - 1) + 1.0 / max(video.source_fps, 1e-6)
    parts = [
        f"**{html.escape(clip.name)}** · {video.width}×{video.height}",
        f"source {video.source_fps:.3g} fps" + (" (variable)" if video.variable_frame_rate
                                                 else ""),
        f"processing **{video.num_frames} frame{'s' if video.num_frames != 1 else ''}** "
        f"({_every(selection.stride)}, {video.fps:.3g} fps) "
        f"from {selection.start_s:g} s to {span_end:.2f} s",
    ]
    if video.audio_stream is not None:
        parts.append("has audio")
    return " · ".join(parts) + "."


def _every(n: int) -> str:
    """"every frame", "every 2nd frame", "every 11th frame"."""
    if n == 1:
        return "every frame"
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"every {n}{suffix} frame"


def objects_value(session: VideoSession) -> dict[str, Any]:
    """``ObjectList`` rows: colour, name, prompted frames, frames with a mask."""
    if session.video is None:
        return {"items": []}
    track = session.track
    items = []
    for obj in session.objects:
        if obj.is_empty:
            meta = "no prompts yet: click the frame"
        else:
            frames = ", ".join(str(f) for f in obj.frames[:6]) + ("…" if len(obj.frames) > 6
                                                                   else "")
            shown = 0
            if track is not None:
                shown = sum(1 for f in track if track.rle(f, obj.object_id) is not None)
            meta = f"prompts on frame {frames} · masks on {shown}/{session.video.num_frames}"
        items.append({"id": obj.object_id, "name": html.escape(obj.name),
                      "color": SPEC.hex_for(obj.object_id), "meta": meta,
                      "active": obj.object_id == session.active_id})
    return {"items": items}


def timeline_value(session: VideoSession) -> dict[str, Any]:
    """The ``Timeline`` widget's value: every object's frames (``workbench.video.timeline``)."""
    return build_timeline(session).as_value()


def progress_text(run: RunEstimate, what: str = "Tracking", done: int | None = None,
                  total: int | None = None) -> str:
    """"Tracking: 12/50 frames · about 18 s left (0.45 s a frame, measured in this run)".

    ``done``/``total`` override the run's counts in the first half (one model's frames of a
    comparison whose estimate covers both models); the time left is always the run's
    (``workbench.estimates``: this run's pace, else measured before, else a labelled guess)."""
    done = run.done if done is None else done
    total = run.total if total is None else total
    left = run.text()
    return f"{what}: {done}/{total} frames" + (f" · {left}" if left else "")


def run_summary(run: dict[str, Any]) -> str:
    """One line after a job: frames, speed, and whether it was stopped."""
    if not run:
        return ""
    done, seconds = run.get("frames", 0), run.get("seconds", 0.0)
    rate = f" at {done / seconds:.2f} frames/s" if done and seconds > 0 else ""
    verb = "Stopped after" if run.get("stopped") else "Tracked"
    return f"{verb} {done} frame{'s' if done != 1 else ''} in {seconds:.1f} s{rate}" \
           f" with **{html.escape(run.get('model', ''))}**."


# --- compare ------------------------------------------------------------------------------


def compare_images(session: VideoSession, frame: int) -> tuple[np.ndarray | None, ...]:
    """The two models' masks drawn on ``frame`` (None before a compare run)."""
    run, video = session.compare, session.video
    if run is None or video is None or not 0 <= frame < video.num_frames:
        return None, None
    image = video.frame(frame)
    return tuple(render_frame(image, frame_masks(track, frame), max_side=COMPARE_SIDE)
                 for track in run.tracks)


def iou_rows(run: CompareRun | None) -> list[dict[str, Any]]:
    """Rows ``{"frame", "IoU"}`` of the per-frame IoU curve, in frame order."""
    if run is None:
        return []
    return [{"frame": frame, "IoU": round(value, 4)} for frame, value in sorted(run.ious.items())]


def compare_summary(run: CompareRun | None, names: tuple[str, str]) -> str:
    if run is None:
        return ("Pick two video models (e.g. EdgeTAM and a SAM 2.1 size) and press "
                "**Compare**: both track the same prompts; their results play side by side with "
                "the IoU between them on every frame.")
    parts = []
    for which, name in enumerate(names):
        fps = run.fps(which)
        speed = f"{fps:.2f} frames/s" if fps is not None else "not run yet"
        parts.append(f"**{html.escape(name)}**: {run.frames_done[which]} frames, {speed}")
    if run.ious:
        values = list(run.ious.values())
        parts.append(f"IoU between them: mean {np.mean(values):.3f}, lowest {min(values):.3f} "
                     f"(frame {min(run.ious, key=run.ious.get)})")
    state = "" if run.finished else " (stopped early)"
    return " · ".join(parts) + state + "."


def iou_table(run: CompareRun | None) -> Any:
    """The IoU curve as a ``pandas.DataFrame`` (columns ``frame``, ``IoU``) for ``gr.LinePlot``."""
    import pandas as pd

    return pd.DataFrame(iou_rows(run), columns=["frame", "IoU"])
