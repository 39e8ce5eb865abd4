"""What the segment view shows for a session: plain values for the page's components.

Pure functions of a ``Session`` (no Gradio), so they are unit-tested; ``ui.segment.view`` passes
them to the components. Text that includes user data (the file name) is HTML-escaped here.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from ui.objects import SegObject
from ui.render import Layer, Preview, color_hex, data_url, object_color
from ui.session import Session

HELP_HINT = ("Click the object to add a point · drag to draw a box · right-click or "
             "shift-click marks background")


@dataclass(frozen=True)
class View:
    """Values for the segment view's components, in ``ui.segment.view.VIEW_OUTPUTS`` order."""

    canvas: dict[str, Any]
    objects: dict[str, Any]
    candidates: dict[str, Any]
    status: str
    can_undo: bool
    can_redo: bool
    can_clear: bool


def preview_of(session: Session) -> Preview:
    """The downscaled preview of the session's image, built once per image."""
    picture = session.picture
    cached = session.preview
    if cached is None or cached[0] != picture.digest:
        cached = (picture.digest, Preview(picture.image))
        session.preview = cached
    return cached[1]


def layers_of(session: Session) -> list[Layer]:
    active = session.workspace.active_id
    return [
        Layer(o.result.mask(), object_color(o.object_id), o.object_id == active)
        for o in session.workspace.with_masks()
    ]


def canvas_value(session: Session, hint: str | None = None) -> dict[str, Any]:
    session.render_count += 1
    if not session.has_image:
        return {"hint": hint or "Upload an image or pick an example on the left.",
                "n": session.render_count}
    picture = session.picture
    height, width = picture.image.shape[:2]
    active = session.workspace.active
    prompts = active.prompts
    rendered = preview_of(session).render(layers_of(session))
    count = len(session.workspace.with_masks())
    return {
        "src": data_url(rendered),
        "w": width,
        "h": height,
        "r": round(max(width, height) / 110, 2),
        "points": [[x, y, label] for (x, y), label in zip(prompts.points, prompts.labels)],
        "box": list(prompts.box) if prompts.box is not None else None,
        "color": color_hex(object_color(active.object_id)),
        "alt": html.escape(f"{picture.name} with {count} mask(s)", quote=True),
        "hint": html.escape(hint) if hint else _hint(active),
        "n": session.render_count,
    }


def _hint(active: SegObject) -> str:
    if active.is_empty:
        return f"Object {active.object_id}: {HELP_HINT}."
    text = f"Object {active.object_id}: {active.prompts.describe()}"
    if active.result is not None:
        text += f" · score {active.result.score:.2f}"
    return text + " · click again to refine"


def _meta(obj: SegObject, pixels: int) -> str:
    if obj.is_empty:
        return "empty: click the image"
    if obj.result is None:
        return "no mask yet"
    share = 100.0 * obj.result.area / max(1, pixels)
    return f"{share:.1f}% of image · score {obj.result.score:.2f}"


def objects_value(session: Session) -> dict[str, Any]:
    if not session.has_image:
        return {"items": []}
    pixels = session.image.shape[0] * session.image.shape[1]
    ws = session.workspace
    return {"items": [
        {"id": o.object_id, "name": f"Object {o.object_id}",
         "color": color_hex(object_color(o.object_id)), "meta": _meta(o, pixels),
         "active": o.object_id == ws.active_id}
        for o in ws.objects
    ]}


def candidates_value(session: Session) -> dict[str, Any]:
    if not session.has_image:
        return {"items": []}
    active = session.workspace.active
    step = active.current
    if len(step.candidates) < 2:
        return {"items": []}
    preview = preview_of(session)
    color = object_color(active.object_id)
    items = [
        {"src": data_url(preview.thumbnail(c.mask(), color), quality=80),
         "label": f"score {c.score:.2f}" + (" · shown" if i == step.chosen else ""),
         "chosen": i == step.chosen}
        for i, c in enumerate(step.candidates)
    ]
    return {"title": "The model is unsure what you meant: pick a mask (the best score is shown).",
            "items": items}


def status_text(session: Session, display_name: str) -> str:
    """One line of timings: which model, how the embedding was obtained, the last decode."""
    if not session.has_image:
        return f"Model: **{display_name}**."
    parts = [f"Model: **{display_name}**"]
    timings = session.timings
    if "encode_s" in timings:
        if timings.get("cached"):
            parts.append("image embedding from cache")
        else:
            parts.append(f"image encoded in {timings['encode_s']:.2f} s")
    if "decode_s" in timings:
        parts.append(f"last mask in {1000 * timings['decode_s']:.0f} ms")
    return " · ".join(parts) + "."


def build_view(session: Session, display_name: str, hint: str | None = None) -> View:
    active = session.workspace.active
    return View(
        canvas=canvas_value(session, hint),
        objects=objects_value(session),
        candidates=candidates_value(session),
        status=status_text(session, display_name),
        can_undo=session.has_image and active.can_undo,
        can_redo=session.has_image and active.can_redo,
        can_clear=session.has_image and not active.is_empty,
    )
