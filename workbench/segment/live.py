"""Clicks, boxes and hover previews outside Gradio's queue: the logic of the live route.

A queued Gradio event costs ~80 ms round trip by itself, four times a decode, so the canvas
sends clicks to ``server.live_route`` instead; this module is what that route runs (plain
Python, no Starlette, so it is unit-tested directly). Each call:

1. finds the ``Session`` by its secret token (``SessionRegistry.by_token``; unknown -> 403) and
   checks that the page still shows the same image (``gen``; otherwise 409);
2. segments through the one use case (``workbench.segment.use_case.segment`` with
   ``Policy.INTERACTIVE``, ``ctx.limits``): it gets the embedding (``ctx.encode`` waits for an
   encode in progress, so a click made while the image is being encoded is answered when it
   finishes) and decodes in the model's click lane (``ctx.click_lane``, the use case's
   ``decode_gate``: one decode per model at a time, a few waiting, then ``ServerBusyError``
   -> 503); refusals are ``workbench.errors.failure_of``'s, as for ``/segment`` and REST;
3. refuses a click or box on a locked object (423 ``locked``) or a hidden one (409
   ``hidden``), saying how to unlock or show it (``refuse_edit``); hovers on them are stale;
4. for a click or box, records the new step in the session exactly as the Gradio handlers do
   (undo/redo, object list and downloads keep working), and answers only what changed: the
   object's mask as a display-size PNG (``workbench.segment.masks``), its prompts and a hint.

A hover computes what a click at that point would give, without changing the session, and
keeps it, so a click on the same spot reuses it (the preview becomes the prompt at once).
Hovers carry an increasing ``seq``; one that is older than the newest seen when its turn comes
is dropped (``{"stale": true}``), so a moving pointer never queues work.

Fair to every page: the click lane is served round-robin by session (``WorkLane``), each page
has at most one prompt and one hover waiting, and a newer one replaces the waiting one before
any decode is spent on it (a hover whatever its ``seq``; a replaced click or box answers 409).
So a page's click waits for at most one decode of each other active page.

Hand edits (``workbench.segment.edits``) come the same way and wait in the same lane and slot
as a click, so a page that paints cannot push ahead of a page that clicks:

* ``paint`` ``{"points": [[x, y], ...], "radius", "mode": "add"|"erase"}``: one brush or
  eraser stroke, recorded as a new step (undoable) whose prompts are unchanged;
* ``polygon`` ``{"rings": [[[x, y], ...], ...]}``: the mask becomes these rings (even-odd);
* ``outline`` ``{}``: the active mask's borders as rings to edit (the session is unchanged).

A point or box after an edit: the model predicts from all the prompts as always (fed its own
logits, not the edited mask) and the edits are applied again on top of its new mask, so what
the person painted or erased stays painted or erased; "Clear" drops prompts and edits together.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from workbench import inference
from workbench.context import AppContext
from workbench.drawing import SPEC
from workbench.errors import Failure, Refusal, UserError, failure_of
from workbench.event_payloads import box_from_event, point_from_event
from workbench.lanes import SupersededError
from workbench.objects import ObjectLocked, PromptSet, SegObject, Step
from workbench.segment import edits, use_case
from workbench.segment.masks import HOVER_SIDE, encode_mask, mask_payload
from workbench.segment.policy import Policy
from workbench.segment.use_case import Hooks, SegmentRequest
from workbench.segment.values import (
    class_names,
    object_colours,
    object_hint,
    status_text,
)
from workbench.session import Session

OPS = ("point", "box", "hover", "paint", "polygon", "outline")
EDIT_OPS = ("paint", "polygon", "outline")
SAME_SPOT_PX = 0.75  # a click this close to the last hover reuses its mask


class LiveError(Refusal):
    """A refusal of the live route (``workbench.errors.Refusal``; ``title`` fourth, as the
    route's callers write it)."""

    def __init__(self, status: int, code: str, message: str, title: str = "Cannot do that",
                 retry_after_s: int | None = None, field: str | None = None) -> None:
        super().__init__(status, code, message, field, retry_after_s, title)

    @classmethod
    def of(cls, failure: Failure) -> LiveError:
        return cls(failure.status, failure.code, failure.message, failure.title,
                   failure.retry_after_s, failure.field)

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": self.code, "title": self.title,
                                       "message": str(self)}}


class _Overtaken(Exception):
    """A hover's turn came after a newer hover: dropped, never shown."""


@dataclass(frozen=True)
class HoverResult:
    """A hover's answer, kept so that a click on the same spot needs no decode."""

    generation: int
    model_id: str
    object_id: int
    base: Step  # the object's step the preview was computed on (compared by identity)
    x: float
    y: float
    label: int
    step: Step

    def matches(self, session: Session, obj: SegObject, x: float, y: float, label: int) -> bool:
        return (self.generation == session.generation and self.model_id == session.model_id
                and self.object_id == obj.object_id and self.base is obj.current
                and self.label == label and abs(self.x - x) <= SAME_SPOT_PX
                and abs(self.y - y) <= SAME_SPOT_PX)


class LiveSegment:
    """The live route's operations for one ``AppContext`` (see the module docstring)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._recorded = threading.local()  # the step ``_record`` kept, per request thread

    # --- entry point ---------------------------------------------------------------------

    def handle(self, op: str, body: Any) -> dict[str, Any]:
        """Run ``op`` (one of ``OPS``) for the JSON ``body``; raises ``LiveError``. The work
        ``handle_then`` leaves for after the answer is done here, before returning."""
        answer, later = self.handle_then(op, body)
        later()
        return answer

    def handle_then(self, op: str, body: Any) -> tuple[dict[str, Any], Callable[[], None]]:
        """``handle``'s answer, and what may wait until it is sent (the route runs it then):
        making the kept step's other candidates, left for later to answer sooner
        (``inference.step_of(lazy=True)``). Made soon, not when first read, because their
        source refers to the model, which an undo history must not keep alive after the pool
        let it go. They are made on the decode thread, in turn with the clicks."""
        self._recorded.step = None
        try:
            answer = self._handle(op, body)
            step = self._recorded.step
        finally:
            self._recorded.step = None
        if step is None or all(c.packed.made for c in step.candidates):
            return answer, _nothing
        return answer, lambda: self._settle(step)

    def _settle(self, step: Step) -> None:
        decoder = getattr(getattr(self.ctx, "threads", None), "decoder", None)
        if decoder is None:
            inference.settle(step)
        else:
            decoder.run(lambda: inference.settle(step))

    def _handle(self, op: str, body: Any) -> dict[str, Any]:
        if op not in OPS:
            raise LiveError(404, "unknown_op", f"Unknown operation {op!r}; use one of "
                                               f"{', '.join(OPS)}.")
        if not isinstance(body, Mapping):
            raise LiveError(400, "bad_request", "The request must be a JSON object.")
        session = self.session(body.get("token"))
        gen = body.get("gen")
        if isinstance(gen, bool) or not isinstance(gen, int):
            raise LiveError(400, "bad_request", "A request needs the page's image number 'gen' "
                                                "(a whole number); reload the page.")
        if gen != session.generation:
            raise LiveError(409, "image_changed", "The image changed meanwhile; click again.",
                            "Image changed")
        try:
            if op == "hover":
                return self.hover(session, body)
            if op in EDIT_OPS:
                return self.edit(session, op, body)
            return self.prompt(session, op, body)
        except LiveError:
            raise
        except (UserError, Refusal) as exc:  # the same Failure as /segment and REST give
            raise _as_live_error(exc, self.ctx.config.shows_operator_details) from exc

    def session(self, token: Any) -> Session:
        session = self.ctx.sessions.by_token(token)
        if session is None:
            raise LiveError(403, "forbidden", "This page's session has ended or is not yours; "
                                              "reload the page.", "Session ended")
        return session

    # --- operations ----------------------------------------------------------------------

    def prompt(self, session: Session, op: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A click (``{"x", "y", "label"}``) or a box (``{"box": [x0, y0, x1, y1]}``)."""
        start = time.perf_counter()
        with session.lock:
            obj = session.workspace.active
        refuse_edit(obj)
        if op == "point":
            x, y, label = self._point(body)
            self.ctx.limits.check_points(len(obj.prompts.points) + 1)  # before any work
            prompts = obj.prompts.with_point(x, y, label)
            hover = session.hover
            if isinstance(hover, HoverResult) and hover.matches(session, obj, x, y, label):
                return self._record(session, obj, hover.step, start, reused=True)
        else:
            prompts = obj.prompts.with_box(box_from_event({"box": body.get("box")}))
        step = self._decode(session, obj, prompts)
        self.ctx.observe.latency("click", session.model_id, time.perf_counter() - start)
        return self._record(session, obj, step, start)

    def hover(self, session: Session, body: Mapping[str, Any]) -> dict[str, Any]:
        """A preview of a click at ``{"x", "y", "label", "seq"}``; the session is unchanged."""
        start = time.perf_counter()
        seq = body.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise LiveError(400, "bad_request", "A hover needs an integer 'seq'.")
        with session.lock:
            session.hover_seq = max(session.hover_seq, seq)
            obj = session.workspace.active
        x, y, label = self._point(body)
        if obj.locked or obj.hidden:  # a click would be refused: nothing to preview
            return {"ok": True, "stale": True, "reason": "locked" if obj.locked else "hidden"}
        picture = session.picture
        if picture is None or not self.ctx.cached(session.model_id, picture.digest):
            return {"ok": True, "stale": True, "reason": "encoding"}  # never starts an encode
        if len(obj.prompts.points) >= self.ctx.limits.max_points:
            return {"ok": True, "stale": True, "reason": "point cap"}
        prompts = obj.prompts.with_point(x, y, label)
        step = self._decode(session, obj, prompts, seq=seq)
        if step is None:
            return {"ok": True, "stale": True, "reason": "newer hover"}
        session.hover = HoverResult(session.generation, session.model_id, obj.object_id,
                                    obj.current, x, y, label, step)
        return {"ok": True, "stale": False, "seq": seq, "gen": session.generation,
                "object": self._object(session, obj.object_id, step.result, preview=True),
                "ms": self._ms(start, step)}

    def edit(self, session: Session, op: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A brush or eraser stroke, a polygon, or the outline to edit (module docstring)."""
        start = time.perf_counter()
        with session.lock:
            obj = session.workspace.active
        if op != "outline":
            refuse_edit(obj)  # a locked or hidden object takes no brush, eraser or polygon
        picture = session.picture
        if picture is None:
            raise UserError("Upload an image first (or pick an example).", "No image")
        shape = picture.image.shape[:2]
        if op == "paint":  # validated before waiting in the lane: a refusal costs nothing
            stroke = edits.Stroke.from_json(body, shape)
            change = lambda step: edits.painted(step, stroke, shape)  # noqa: E731
        elif op == "polygon":
            rings = edits.polygon_from_json(body, shape)
            change = lambda step: edits.reshaped(step, rings, shape)  # noqa: E731
        lane = self.ctx.click_lane(session.model_id)
        try:
            with lane.admit(client=session.session_id, slot="prompt"):
                if op == "outline":
                    result = obj.result
                    rings = [] if result is None else edits.outline(result.mask(),
                                                                   edits.EDIT_EPSILON)
                    return {"ok": True, "gen": session.generation, "object": obj.object_id,
                            "rings": rings,
                            "ms": {"server": round(1000 * (time.perf_counter() - start), 2),
                                   "decode": 0.0}}
                step = change(obj.current)
        except SupersededError:
            raise LiveError(409, "changed", "A newer edit or click replaced this one.",
                            "Object changed") from None
        except Exception as exc:  # noqa: BLE001 - a full lane (503) and any other failure
            raise _as_live_error(exc, self.ctx.config.shows_operator_details) from exc
        return self._record(session, obj, step, start)

    # --- pieces --------------------------------------------------------------------------

    @staticmethod
    def _point(body: Mapping[str, Any]) -> tuple[float, float, int]:
        click = point_from_event({"x": body.get("x"), "y": body.get("y")})
        label = body.get("label", 1)
        if label not in (0, 1) or isinstance(label, bool):
            raise UserError("A point's label is 1 (object) or 0 (background).",
                            "Click not understood")
        return click.x, click.y, int(label)

    def _decode(self, session: Session, obj: SegObject, prompts: PromptSet,
                seq: int | None = None) -> Step | None:
        """Decode ``prompts`` for ``obj`` in the model's lane; None when a newer hover came."""
        model_id = session.model_id
        picture = session.picture
        if picture is None:
            raise UserError("Upload an image first (or pick an example).", "No image")
        if not self.ctx.status(model_id).present:
            name = self.ctx.spec(model_id).display_name
            raise UserError(f"{name} is not downloaded: download it or pick another model.",
                            "Model not downloaded")
        request = SegmentRequest(picture.image, (inference.to_prompts(prompts),), model_id,
                                 picture.digest, previous=obj.current.model_result)

        def overtaken(step: str) -> None:  # a hover that a newer one made pointless
            if seq is not None and seq < session.hover_seq:
                raise _Overtaken(step)

        lane = self.ctx.click_lane(model_id)
        hooks = Hooks(between=overtaken, decode_gate=lambda: lane.admit(
            client=session.session_id, slot="hover" if seq is not None else "prompt"))
        try:
            result = use_case.segment(self.ctx, request, self.ctx.limits, Policy.INTERACTIVE,
                                      hooks)
        except (_Overtaken, SupersededError):
            if seq is None:  # a newer click or box of this page took this one's place
                raise LiveError(409, "changed", "A newer click replaced this one.",
                                "Object changed") from None
            return None
        except (UserError, LiveError):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            raise _as_live_error(exc, self.ctx.config.shows_operator_details) from exc
        if seq is None and (not result.encode_cached or "encode_s" not in session.timings):
            session.timings.update(encode_s=result.encode_s, cached=result.encode_cached)
        step = inference.step_of(prompts, result.predictions[0], model_id, lazy=True)
        return step.with_edits(obj.current.edits)  # hand edits stay on top of the new mask

    def _record(self, session: Session, obj: SegObject, step: Step, start: float,
                reused: bool = False) -> dict[str, Any]:
        with session.lock:
            current = session.workspace.get(obj.object_id)
            if current is None or current.current is not obj.current:
                raise LiveError(409, "changed", "The object changed meanwhile; click again.",
                                "Object changed")
            refuse_edit(current)  # locked or hidden while the mask was computed
            updated = current.record(step)
            session.workspace = session.workspace.update(updated)
            if step.edits is None or step.prompts != obj.prompts:  # an edit decodes nothing
                session.timings["decode_s"] = step.result.decode_seconds * max(
                    1, len(step.candidates)) if step.result is not None else 0.0
            session.hover = None
            session.undo_restores_delete = False
            session.revision += 1
            revision = session.revision
        self._recorded.step = step  # its other candidates are made after the answer
        name = self.ctx.spec(session.model_id).display_name
        prompts = step.prompts
        return {
            "ok": True, "gen": session.generation, "rev": revision, "reused": reused,
            "object": self._object(session, obj.object_id, step.result),
            "points": [[x, y, label] for (x, y), label in zip(prompts.points, prompts.labels)],
            "box": list(prompts.box) if prompts.box is not None else None,
            "hint": object_hint(updated, session.model_id, class_names(session)),
            "status": status_text(session, name, self.ctx),
            "ms": self._ms(start, step),
        }

    @staticmethod
    def _object(session: Session, object_id: int, result: Any, preview: bool = False
                ) -> dict[str, Any]:
        """The object as the canvas draws it. A hover's ``preview`` is sampled at
        ``HOVER_SIDE`` (a quarter of the pixels to encode, send and decode; the browser scales
        it) and not kept in the session's payload cache, which holds the masks a page shows
        (a hover every 100 ms would evict them); a click on the hovered spot encodes its own."""
        colour = object_colours(session).get(object_id) or SPEC.hex_for(object_id)
        if preview:
            mask = None if result is None else encode_mask(result.mask(), result.bbox,
                                                            HOVER_SIDE)
        else:
            mask = mask_payload(session, result)
        return {"id": object_id, "color": colour, "mask": mask}

    @staticmethod
    def _ms(start: float, step: Step) -> dict[str, float]:
        decode = 0.0 if step.result is None else step.result.decode_seconds * max(
            1, len(step.candidates))
        return {"server": round(1000 * (time.perf_counter() - start), 2),
                "decode": round(1000 * decode, 2)}


def _nothing() -> None:
    return None


def refuse_edit(obj: SegObject) -> None:
    """A prompt for a locked or hidden object is refused before any work, with what to do:
    HTTP 423 ``locked`` (the object list's lock guards finished work) or 409 ``hidden`` (a
    click on an object one cannot see would change it unseen)."""
    if obj.locked:
        raise LiveError(423, "locked", str(ObjectLocked(obj, "refine")), "Object locked")
    if obj.hidden:
        raise LiveError(409, "hidden", f"{obj.label} is hidden: show it (the eye in the object "
                                       "list) to refine it, or start a new object (N).",
                        "Object hidden")


def _as_live_error(exc: BaseException, operator: bool) -> LiveError:
    """The live route's ``LiveError`` for any failure, by the one mapping (``failure_of``)."""
    return LiveError.of(failure_of(exc, operator))
