"""Clicks, boxes and hover previews outside Gradio's queue: the logic of the live route.

A queued Gradio event costs ~80 ms round trip by itself, four times a decode, so the canvas
sends clicks to ``server.live_route`` instead; this module is what that route runs (plain
Python, no Starlette, so it is unit-tested directly). Each call:

1. finds the ``Session`` by its secret token (``SessionRegistry.by_token``; unknown -> 403) and
   checks that the page still shows the same image (``gen``; otherwise 409);
2. gets the embedding (``ctx.encode``: waits for an encode in progress, so a click made while
   the image is being encoded is answered when it finishes);
3. decodes in the model's click lane (``ctx.click_lane``: one decode per model at a time, a few
   waiting, then ``ServerBusyError`` -> 503);
4. for a click or box, records the new step in the session exactly as the Gradio handlers do
   (undo/redo, object list and downloads keep working), and answers only what changed: the
   object's mask as a display-size PNG (``workbench.segment.masks``), its prompts and a hint.

A hover computes what a click at that point would give, without changing the session, and
keeps it, so a click on the same spot reuses it (the preview becomes the prompt at once).
Hovers carry an increasing ``seq``; one that is older than the newest seen when its turn comes
is dropped (``{"stale": true}``), so a moving pointer never queues work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from workbench import inference
from workbench.context import AppContext
from workbench.drawing import SPEC
from workbench.errors import UserError
from workbench.event_payloads import box_from_event, check_point_cap, point_from_event
from workbench.objects import PromptSet, SegObject, Step
from workbench.segment.masks import mask_payload
from workbench.segment.values import object_hint, status_text
from workbench.session import Session

OPS = ("point", "box", "hover")
SAME_SPOT_PX = 0.75  # a click this close to the last hover reuses its mask


class LiveError(Exception):
    """A refusal with its HTTP status, a machine-readable code and a message for a person."""

    def __init__(self, status: int, code: str, message: str, title: str = "Cannot do that",
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.title = title
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": self.code, "title": self.title,
                                       "message": str(self)}}


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

    # --- entry point ---------------------------------------------------------------------

    def handle(self, op: str, body: Any) -> dict[str, Any]:
        """Run ``op`` ("point", "box" or "hover") for the JSON ``body``; raises ``LiveError``."""
        if op not in OPS:
            raise LiveError(404, "unknown_op", f"Unknown operation {op!r}; use one of "
                                               f"{', '.join(OPS)}.")
        if not isinstance(body, Mapping):
            raise LiveError(400, "bad_request", "The request must be a JSON object.")
        session = self.session(body.get("token"))
        gen = body.get("gen")
        if gen != session.generation:
            raise LiveError(409, "image_changed", "The image changed meanwhile; click again.",
                            "Image changed")
        try:
            if op == "hover":
                return self.hover(session, body)
            return self.prompt(session, op, body)
        except UserError as exc:
            raise LiveError(422, "bad_prompt", str(exc), exc.title) from exc

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
        if op == "point":
            x, y, label = self._point(body)
            check_point_cap(len(obj.prompts.points), self.ctx.config.max_points)
            prompts = obj.prompts.with_point(x, y, label)
            hover = session.hover
            if isinstance(hover, HoverResult) and hover.matches(session, obj, x, y, label):
                return self._record(session, obj, hover.step, start, reused=True)
        else:
            prompts = obj.prompts.with_box(box_from_event({"box": body.get("box")}))
        step = self._decode(session, obj, prompts)
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
        picture = session.picture
        if picture is None or not self.ctx.cached(session.model_id, picture.digest):
            return {"ok": True, "stale": True, "reason": "encoding"}  # never starts an encode
        if len(obj.prompts.points) >= self.ctx.config.max_points:
            return {"ok": True, "stale": True, "reason": "point cap"}
        prompts = obj.prompts.with_point(x, y, label)
        step = self._decode(session, obj, prompts, seq=seq)
        if step is None:
            return {"ok": True, "stale": True, "reason": "newer hover"}
        session.hover = HoverResult(session.generation, session.model_id, obj.object_id,
                                    obj.current, x, y, label, step)
        return {"ok": True, "stale": False, "seq": seq, "gen": session.generation,
                "object": self._object(session, obj.object_id, step.result),
                "ms": self._ms(start, step)}

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
        try:
            encoded = self.ctx.encode(model_id, picture.image, picture.digest)
            if seq is None and (not encoded.cached or "encode_s" not in session.timings):
                session.timings.update(encode_s=encoded.seconds, cached=encoded.cached)
            with self.ctx.click_lane(model_id).admit():
                if seq is not None and seq < session.hover_seq:
                    return None
                return inference.decode(self.ctx.backend(model_id), encoded.embedding,
                                        prompts, previous=obj.result)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            raise _as_live_error(exc, self.ctx.config.shows_operator_details) from exc

    def _record(self, session: Session, obj: SegObject, step: Step, start: float,
                reused: bool = False) -> dict[str, Any]:
        with session.lock:
            current = session.workspace.get(obj.object_id)
            if current is None or current.current is not obj.current:
                raise LiveError(409, "changed", "The object changed meanwhile; click again.",
                                "Object changed")
            updated = current.record(step)
            session.workspace = session.workspace.update(updated)
            session.timings["decode_s"] = step.result.decode_seconds * max(
                1, len(step.candidates)) if step.result is not None else 0.0
            session.hover = None
            session.undo_restores_delete = False
            session.revision += 1
            revision = session.revision
        name = self.ctx.spec(session.model_id).display_name
        prompts = step.prompts
        return {
            "ok": True, "gen": session.generation, "rev": revision, "reused": reused,
            "object": self._object(session, obj.object_id, step.result),
            "points": [[x, y, label] for (x, y), label in zip(prompts.points, prompts.labels)],
            "box": list(prompts.box) if prompts.box is not None else None,
            "hint": object_hint(updated, session.model_id),
            "status": status_text(session, name, self.ctx),
            "ms": self._ms(start, step),
        }

    @staticmethod
    def _object(session: Session, object_id: int, result: Any) -> dict[str, Any]:
        return {"id": object_id, "color": SPEC.hex_for(object_id),
                "mask": mask_payload(session, result)}

    @staticmethod
    def _ms(start: float, step: Step) -> dict[str, float]:
        decode = 0.0 if step.result is None else step.result.decode_seconds * max(
            1, len(step.candidates))
        return {"server": round(1000 * (time.perf_counter() - start), 2),
                "decode": round(1000 * decode, 2)}


def _as_live_error(exc: BaseException, operator: bool) -> LiveError:
    from workbench.errors import describe, log_unexpected
    from workbench.lanes import ServerBusyError

    title, message, expected = describe(exc, operator)
    if not expected:
        log_unexpected(exc)
    if isinstance(exc, ServerBusyError):
        return LiveError(503, "busy", message, title, exc.retry_after_s)
    return LiveError(422 if expected else 500, "failed" if expected else "internal", message,
                     title)
