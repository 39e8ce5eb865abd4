"""What the segment view shows for a session: plain values for the page's components.

Pure functions of a ``Session`` (no Gradio), so they are unit-tested; ``ui.segment.view`` passes
them to the components. Text that includes user data (the file name) is HTML-escaped here.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from typing import Any

from sam_backends.families import facts_of_model
from workbench.canvas import CanvasObject, CanvasView, display_src, empty_value
from workbench.drawing import SPEC, hex_colour
from workbench.inference import candidates_differ
from workbench.limits import Limits
from workbench.objects import EDIT_MODEL_ID, PromptSet, SegObject
from workbench.proposals.review import canvas_proposals
from workbench.render import Preview, data_url
from workbench.segment.masks import mask_payload
from workbench.session import Session

DEFAULT_LIMITS = Limits()  # for contexts built without flags (tests)

LIVE_ROUTE = "/samwb/segment"  # ``server.live_route``

EMPTY_HINT = "Upload an image or pick an example on the left."
HELP_HINT = ("Click the object to add a point · drag to draw a box · right-click or "
             "shift-click marks background · hover to preview · ? lists the keys")


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


def canvas_view(session: Session, hint: str | None, src: str) -> CanvasView:
    """The browser canvas's view of the session (its image must be set): every shown object's
    mask (``mask_payload``, cached per result) in its colour (``object_colours``), the active
    object's prompts and the hint. Hidden objects are left out, so they are neither drawn nor
    part of the picture (they are still saved and exported)."""
    picture = session.picture
    ws = session.workspace
    active = ws.active
    prompts = active.prompts if not active.hidden else PromptSet()
    colours = object_colours(session)
    shown = [o for o in ws.objects if not o.hidden]
    proposals = review_of(session)
    if proposals and not hint:
        hint = review_hint(session.review, len(proposals))
    return CanvasView(
        src=src, size=picture.image.shape[:2], name=html.escape(picture.name),
        alt=html.escape(f"{picture.name} with {sum(1 for o in ws.with_masks() if not o.hidden)}"
                        " mask(s)", quote=True),
        objects=tuple(CanvasObject(o.object_id, mask_payload(session, o.result)
                                   if not o.is_empty else None, o.object_id == ws.active_id,
                                   colours[o.object_id])
                      for o in shown),
        active=active.object_id,
        points=tuple((x, y, label) for (x, y), label in zip(prompts.points, prompts.labels)),
        box=tuple(prompts.box) if prompts.box is not None else None,
        hint=html.escape(hint) if hint else object_hint(active, session.model_id,
                                                        class_names(session)),
        active_colour=colours[active.object_id],
        proposals=proposals,
    )


def review_of(session: Session) -> tuple:
    """The proposals under review on this image (``workbench.canvas.CanvasProposal``), or ()
    when there are none, or they belong to an image the page no longer shows."""
    review = session.review
    if (review is None or review.digest != session.digest
            or review.generation != session.generation):
        return ()
    cache = session.review_payloads
    if cache is None or cache[0] is not review.proposals:
        cache = (review.proposals, {})
        session.review_payloads = cache
    return canvas_proposals(review, cache[1])


def review_hint(review: Any, shown: int) -> str:
    """The canvas's hint while proposals are reviewed: what a click does now."""
    chosen = len(review.chosen)
    return (f"Reviewing {shown} proposal{'s' if shown != 1 else ''} ({chosen} selected): "
            "click one to select or unselect it, then Keep selected or Keep all; Discard "
            "goes back to clicking points.")


def display_src_of(session: Session) -> str:
    """The session image at display size as a data URL, encoded once per image."""
    picture = session.picture
    cached = getattr(session, "display_src", None)
    if cached is None or cached[0] != picture.digest:
        cached = (picture.digest, display_src(picture.image))
        session.display_src = cached
    return cached[1]


def canvas_value(session: Session, hint: str | None = None) -> dict[str, Any]:
    """The browser canvas's value with clicks as Gradio events (the Compare view): the image as
    a display-size data URL and every object's mask; the browser draws them (``canvas.js``)."""
    session.render_count += 1
    if not session.has_image:
        return empty_value(hint or EMPTY_HINT, session.render_count)
    return canvas_view(session, hint, display_src_of(session)).value(session.render_count)


def score_label(model_id: str | None, score: float) -> str:
    """What a mask's score is, in the family's words (SAM's predicted IoU is a "score";
    GrabCut's a colour separation)."""
    facts = facts_of_model(model_id)
    return f"{facts.score_name if facts else 'score'} {score:.2f}"


def encodes(model_id: str | None) -> bool:
    """Whether the model has an image embedding to compute (and to show as a step)."""
    facts = facts_of_model(model_id)
    return facts is None or facts.encodes


def object_hint(active: SegObject, model_id: str | None = None,
                names: dict[int, str] | None = None) -> str:
    """The canvas's hint line for the active object (HTML-escaped: it holds the name), named
    as the object list names it ("car 3" in a project: ``names`` are its class names)."""
    name = html.escape(_object_label(active, names or {}))
    if active.locked:
        return f"{name} is locked: unlock it in the object list to refine it."
    if active.hidden:
        return f"{name} is hidden: show it (the eye in the object list) to refine it."
    if active.is_empty:
        return f"{name}: {HELP_HINT}."
    text = f"{name}: {active.prompts.describe()}"
    if active.result is not None and active.result.model_id != EDIT_MODEL_ID:
        text += " · " + score_label(active.result.model_id, active.result.score)
    if active.current.edits is None:
        return text + " · click again to refine"
    if active.prompts.is_empty:
        return text + " · painted by hand"
    return text + " · hand edits: a click re-runs the model and keeps your edits on top"


def live_canvas_value(session: Session, ctx: Any, hint: str | None = None,
                      busy: str | None = None) -> dict[str, Any]:
    """The live canvas's value (the Segment view): as ``canvas_value``, with the image by URL
    and clicks, boxes and hover sent to the live route (``server.live_route``).

    Args:
        busy: text of the one progress indicator on the canvas (e.g. "Encoding with ...");
            clicks made meanwhile are kept and answered when it is gone.
    """
    session.render_count += 1
    if not session.has_image:
        return empty_value(hint or EMPTY_HINT, session.render_count)
    view = dataclasses.replace(
        canvas_view(session, hint,
                    f"{LIVE_ROUTE}/image/{session.token}/{session.generation}.jpg"),
        busy=html.escape(busy) if busy else "",
        live={"url": LIVE_ROUTE, "token": session.token, "gen": session.generation},
        max_points=getattr(ctx, "limits", DEFAULT_LIMITS).max_points)  # the canvas's cap
    return view.value(session.render_count)


def _meta(obj: SegObject, pixels: int) -> str:
    if obj.is_empty:
        return "empty: click the image"
    if obj.result is None:
        return "no mask yet"
    share = 100.0 * obj.result.area / max(1, pixels)
    proposed = "proposed · " if getattr(obj, "source", "person") == "model" else ""
    if obj.result.model_id == EDIT_MODEL_ID:  # painted, no model: no score to show
        return f"{proposed}{share:.1f}% · painted"
    edited = " · edited" if obj.current.edits is not None else ""
    return (f"{proposed}{share:.1f}% · {score_label(obj.result.model_id, obj.result.score)}"
            f"{edited}")


def project_classes(session: Session) -> tuple[Any, ...]:
    """The classes of the session's project, in the project's order (() without one)."""
    store = getattr(session, "project", None)
    if store is None or getattr(session, "link", None) is None:
        return ()
    return tuple(store.classes())


def class_names(session: Session) -> dict[int, str]:
    """Class id -> name of the session's project ({} without one)."""
    return {c.class_id: c.name for c in project_classes(session)}


def object_colours(session: Session) -> dict[int, str]:
    """Object id -> ``#rrggbb``: in its class's hue family in a project (the class colour is
    the family, ``SPEC.colour_for(id, family)``), by object number without one."""
    families = {c.class_id: hex_colour(c.color) for c in project_classes(session)}
    return {o.object_id: SPEC.hex_for(o.object_id, families.get(o.class_id))
            for o in session.workspace.objects}


def _object_label(obj: SegObject, names: dict[int, str]) -> str:
    """"car · left one" with a project (class, then the optional instance name)."""
    if not names or obj.class_id not in names:
        return obj.label
    klass = names[obj.class_id]
    return f"{klass} · {obj.name}" if obj.name else f"{klass} {obj.object_id}"


UNNAMED_GROUP = "Unnamed"
NO_CLASS_GROUP = "No class"


def _group_of(obj: SegObject, names: dict[int, str]) -> tuple[str, str]:
    """(key, label) of the list group ``obj`` belongs to: its class in a project, otherwise
    its name (what "Keep all" gives a text query's objects), unnamed ones together."""
    if names:
        if obj.class_id in names:
            return f"class:{obj.class_id}", names[obj.class_id]
        return "class:none", NO_CLASS_GROUP
    name = " ".join(obj.name.split()).casefold()
    return (f"name:{name}", obj.name) if name else ("name:", UNNAMED_GROUP)


def objects_value(session: Session) -> dict[str, Any]:
    """The object list's value (``ui.widgets.object_list``): rows grouped, groups counted.

    ``items`` (in workspace order): ``id``, ``name`` (HTML-escaped), ``color``, ``meta``,
    ``active``, ``hidden``, ``locked``, ``group`` (a key of ``groups``) and ``search`` (plain
    lower-case text the search box matches: the label, class and name; never shown as HTML).
    ``groups`` (in the project's class order, else first appearance): ``key``, ``label``
    (escaped), ``count``, ``hidden`` (how many are hidden), ``color`` (the class colour, or the
    first object's). ``classes``: the project's ``[{id, name}]`` for "set class" (empty
    without a project).
    """
    if not session.has_image:
        return {"items": []}
    pixels = session.image.shape[0] * session.image.shape[1]
    ws = session.workspace
    classes = project_classes(session)
    names = {c.class_id: c.name for c in classes}
    colours = object_colours(session)
    items, groups = [], {}
    if names:  # every class of the project has its place, even before it has objects
        order = {f"class:{c.class_id}": i for i, c in enumerate(classes)}
    else:
        order = {}
    for o in ws.objects:
        key, label = _group_of(o, names)
        group = groups.setdefault(key, {"key": key, "label": html.escape(label, quote=True),
                                        "count": 0, "hidden": 0, "color": colours[o.object_id]})
        group["count"] += 1
        group["hidden"] += int(o.hidden)
        text = _object_label(o, names)
        items.append({
            "id": o.object_id, "name": html.escape(text, quote=True),
            "color": colours[o.object_id], "meta": _meta(o, pixels),
            "active": o.object_id == ws.active_id, "hidden": o.hidden, "locked": o.locked,
            "group": key, "search": " ".join((text, o.name)).casefold()})
    class_colour = {f"class:{c.class_id}": c.color for c in classes}
    for key, group in groups.items():
        group["color"] = class_colour.get(key, group["color"])
    ordered = sorted(groups.values(), key=lambda g: order.get(g["key"], len(order)))
    return {"items": items, "groups": ordered,
            "classes": [{"id": c.class_id, "name": html.escape(c.name, quote=True)}
                        for c in classes]}


def candidates_value(session: Session, always: bool = False) -> dict[str, Any]:
    """The candidate strip: shown when the candidates really differ (``candidates_differ``)
    or when ``always``; otherwise only a note that similar alternatives exist."""
    if not session.has_image:
        return {"items": []}
    active = session.workspace.active
    step = active.current
    if len(step.candidates) < 2:
        return {"items": []}
    if not always and not candidates_differ(step.candidates):
        return {"items": [], "similar": len(step.candidates)}
    preview = preview_of(session)
    color = hex_colour(object_colours(session)[active.object_id])
    items = [
        {"src": data_url(preview.thumbnail(c.mask(), color), quality=80),
         "label": score_label(c.model_id, c.score) + (" · shown" if i == step.chosen else ""),
         "chosen": i == step.chosen}
        for i, c in enumerate(step.candidates)
    ]
    return {"title": "Other readings of your click: pick the one you meant ([ and ] cycle).",
            "items": items}


def status_text(session: Session, display_name: str, ctx: Any = None) -> str:
    """One line of timings: which model, how the embedding was obtained, the last decode.

    Truthful: timings are those of the current model (handlers clear them on a switch), GrabCut
    has no embedding to speak of, and with ``ctx`` "from cache" is only said of a loaded model.
    """
    if not session.has_image:
        return f"Model: **{display_name}**."
    parts = [f"Model: **{display_name}**"]
    timings = session.timings
    loaded = ctx is None or ctx.pool.is_loaded(session.model_id)
    if not encodes(session.model_id):
        pass  # e.g. GrabCut works on the pixels at each click: nothing is encoded
    elif "encode_s" in timings and loaded:
        if timings.get("cached") and float(timings["encode_s"]) < 0.05:
            parts.append("image embedding from cache")
        else:
            parts.append(f"image encoded in {timings['encode_s']:.2f} s")
    if "decode_s" in timings:
        parts.append(f"last mask in {1000 * timings['decode_s']:.0f} ms")
    text = " · ".join(parts) + "."
    link = getattr(session, "link", None)
    if link is not None:
        text += (f" ⚠ **Not saved**: {link.problem}." if link.problem
                 else " Saved to the project.")
    return text


def build_view(session: Session, display_name: str, hint: str | None = None,
               ctx: Any = None, busy: str | None = None) -> View:
    """All values; with ``ctx`` the canvas is the live one (``live_canvas_value``)."""
    active = session.workspace.active
    canvas = (canvas_value(session, hint) if ctx is None
              else live_canvas_value(session, ctx, hint, busy))
    return View(
        canvas=canvas,
        objects=objects_value(session),
        candidates=candidates_value(session, getattr(session, "show_candidates", False)),
        status=status_text(session, display_name, ctx),
        can_undo=session.has_image and (active.can_undo
                                        or bool(getattr(session, "undo_restores_delete", False))),
        can_redo=session.has_image and active.can_redo,
        can_clear=session.has_image and not active.is_empty,
    )
