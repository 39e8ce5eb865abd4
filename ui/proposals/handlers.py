"""Handlers of the segment view's proposals panel: (session, proposals, event) -> new values.

The panel's own per-user value is the ``ProposalSet`` in its ``gr.State`` (immutable); the
segment view's ``Session`` changes only when proposals are kept. Every handler is wrapped by
``feedback.guard``: a failure becomes a toast and the panel keeps what it showed.

Long runs ("everything", detection, SAM 3) report progress through ``gr.Progress`` and stop
when the person presses Stop: Gradio cancels the event (``cancels=``) and the engine, which
is still running in its worker thread, sees ``cancel()`` turn true at its next step.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import Any, Callable, Iterator

import gradio as gr

from ui.feedback import guard
from workbench.context import AppContext
from workbench.errors import UserError
from workbench.event_payloads import proposal_from_event
from workbench.proposals import engines, logic
from workbench.segment.values import live_canvas_value
from workbench.session import Session

PANEL_SIZE = 3  # proposals state, the segment view's canvas, status
EMPTY_STATUS = ("Press **Everything** to find every object, or type what to look for "
                "(\"dog\", \"red car, bicycle\") and press **Find**.")


STOPPED = "Stopped: nothing was kept from that run."

class CancelFlags:
    """One "stop" flag per browser session (by Gradio's session hash), bounded."""

    def __init__(self, capacity: int = 512) -> None:
        self._lock = threading.Lock()
        self._flags: OrderedDict[str, threading.Event] = OrderedDict()
        self.capacity = capacity

    def start(self, key: str) -> threading.Event:
        flag = threading.Event()
        with self._lock:
            self._flags[key] = flag
            self._flags.move_to_end(key)
            while len(self._flags) > self.capacity:
                self._flags.popitem(last=False)
        return flag

    def stop(self, key: str) -> bool:
        """Stop ``key``'s run; False when it has none running (nothing to stop)."""
        with self._lock:
            flag = self._flags.get(key)
        if flag is None:
            return False
        flag.set()
        return True

    def finish(self, key: str, flag: threading.Event) -> None:
        """``key``'s run that holds ``flag`` ended (a newer run's flag is kept)."""
        with self._lock:
            if self._flags.get(key) is flag:
                del self._flags[key]


def _key(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "anonymous"


@contextlib.contextmanager
def _locked(session: Session) -> Iterator[None]:
    """The session's lock when it has one (the live click route edits workspaces too)."""
    lock = getattr(session, "lock", None)
    with lock if lock is not None else contextlib.nullcontext():
        yield


def _progress_adapter(progress: Any) -> Callable[..., None]:
    """The engine reports ``(fraction, text)``; Gradio's tracker takes ``desc=``."""

    def report(fraction: float, text: str = "") -> None:
        if progress is not None:
            progress(min(max(float(fraction), 0.0), 1.0), desc=text or None)

    return report


class ProposalsHandlers:
    """The panel's handlers, bound to one ``AppContext``."""

    def __init__(self, ctx: AppContext, everything_defaults: dict[str, Any] | None = None
                 ) -> None:
        """``everything_defaults``: ``EverythingParams`` besides the grid and the threshold
        (e.g. ``stability_score_thresh``; upstream's defaults when absent), checked now."""
        self.ctx = ctx
        self.everything_defaults = dict(everything_defaults or {})
        engines.everything_params_from(self.everything_defaults)
        self.flags = CancelFlags()
        operator = ctx.config.shows_operator_details
        keep_panel = guard(lambda *args: tuple(gr.skip() for _ in range(PANEL_SIZE)), operator)
        keep_all = guard(lambda *args: tuple(gr.skip() for _ in range(PANEL_SIZE + 1)),
                         operator)
        self.everything = keep_panel(self._everything)
        self.text = keep_panel(self._text)
        self.toggle = keep_panel(self._toggle)
        self.threshold = keep_panel(self._threshold)
        self.discard = keep_panel(self._discard)
        self.keep = keep_all(self._keep)
        self.stop = guard(lambda *args: gr.skip(), operator)(self._stop)

    # --- values ------------------------------------------------------------------------------

    def panel(self, session: Session | None, proposals: logic.ProposalSet | None,
              note: str = "") -> tuple:
        """(proposals state, canvas, status) for the panel.

        The proposals are reviewed where the image is: the session keeps them
        (``Session.review``) and the segment view's canvas draws them over the objects, so
        every later view of that canvas (an undo, a new object) shows them too, until they
        are kept or discarded or another image comes."""
        if session is None or session.picture is None:
            return None, gr.skip(), note or EMPTY_STATUS
        with _locked(session):
            session.review = proposals
            canvas = live_canvas_value(session, self.ctx)
        if proposals is None:
            return None, canvas, note or EMPTY_STATUS
        status = (note + " " if note else "") + logic.summary(proposals)
        if proposals.visible:
            status += " Click a proposal on the image to select or unselect it."
        return proposals, canvas, status

    @staticmethod
    def _picture(session: Session | None):
        if session is None or session.picture is None:
            raise UserError("Upload an image first (or pick an example), then find objects.",
                            "No image")
        return session.picture

    # --- runs --------------------------------------------------------------------------------

    def _run(self, session: Session | None, request: gr.Request | None, progress: Any,
             run: Callable[..., Any], threshold: float, query: str) -> tuple:
        picture = self._picture(session)
        threshold = logic.check_threshold(threshold)
        generation = session.generation
        flag = self.flags.start(_key(request))
        report = _progress_adapter(progress)
        try:
            instances = run(picture, flag.is_set, report)
        except engines.Cancelled:
            return gr.skip(), gr.skip(), STOPPED
        finally:
            self.flags.finish(_key(request), flag)
        if generation != session.generation:  # a new image arrived meanwhile: drop the result
            raise UserError("The image changed while the objects were being found; run again.",
                            "Image changed")
        proposals = logic.from_instances(instances, digest=picture.digest, generation=generation,
                                         query=query, session_model=session.model_id,
                                         run_threshold=threshold, threshold=threshold)
        return self.panel(session, proposals)

    def _everything(self, session: Session | None, points_per_side: Any, threshold: float,
                    request: gr.Request, progress=gr.Progress()) -> tuple:
        points = engines.check_points_per_side(points_per_side)

        def run(picture, cancel, report):
            return engines.everything(self.ctx, session.model_id, picture, points, threshold,
                                      defaults=self.everything_defaults, cancel=cancel,
                                      progress=report)

        return self._run(session, request, progress, run, threshold,
                         f"everything, {points} points per side")

    def _text(self, session: Session | None, text: str | None, text_model: str | None,
              threshold: float, request: gr.Request, progress=gr.Progress()) -> tuple:
        phrases = engines.phrases(text)  # bad text is refused before any model work
        self._picture(session)

        def run(picture, cancel, report):
            return engines.text(self.ctx, text_model or engines.DETECTOR, session.model_id,
                                picture, phrases, threshold, cancel=cancel, progress=report)

        return self._run(session, request, progress, run, threshold, ", ".join(phrases))

    def _stop(self, proposals: logic.ProposalSet | None, request: gr.Request) -> Any:
        """The status, at once: Gradio cancels the run's event, so the run's own "Stopped"
        never reaches the page, which kept showing the previous run's result as if current."""
        if not self.flags.stop(_key(request)):
            return gr.skip()
        if proposals is not None:
            return STOPPED + " The outlines shown are from the run before."
        return STOPPED

    # --- choosing ----------------------------------------------------------------------------

    def _current(self, session: Session | None, proposals: logic.ProposalSet | None
                 ) -> logic.ProposalSet:
        picture = self._picture(session)
        if proposals is None:
            raise UserError("There are no proposals yet: press Everything or Find first.",
                            "No proposals")
        logic.check_same_image(proposals, picture.digest, session.generation)
        return proposals

    def _toggle(self, session: Session | None, proposals: logic.ProposalSet | None,
                evt: gr.EventData) -> tuple:
        """A click on a proposal on the canvas: ``{index}``, picked in the browser (the
        smallest visible proposal under the pointer)."""
        proposals = self._current(session, proposals)
        index = proposal_from_event(getattr(evt, "_data", None),
                                    {p.index for p in proposals.visible})
        return self.panel(session, logic.toggle(proposals, index))

    def _threshold(self, session: Session | None, proposals: logic.ProposalSet | None,
                   threshold: float) -> tuple:
        if proposals is None or session is None:
            logic.check_threshold(threshold)
            return gr.skip(), gr.skip(), gr.skip()
        proposals = self._current(session, proposals)
        return self.panel(session, logic.with_threshold(proposals, threshold))

    def _discard(self, session: Session | None, proposals: logic.ProposalSet | None) -> tuple:
        return self.panel(session, None, "Proposals discarded. " + EMPTY_STATUS)

    # --- keeping -----------------------------------------------------------------------------

    def keep_chosen(self, session: Session, proposals: logic.ProposalSet, everything: bool
                    ) -> dict[int, str]:
        """Add the visible (``everything``) or the selected proposals to the session's objects;
        returns {object id: name} of the new objects."""
        chosen = proposals.visible if everything else proposals.chosen
        if not chosen:
            raise UserError("Nothing to keep: " + (
                "no proposal reaches the score threshold; lower it." if everything else
                "click proposals in the picture to select them, or use Keep all."),
                "Nothing selected")
        with _locked(session):
            logic.check_same_image(proposals, session.digest, session.generation)
            workspace, names = logic.keep(session.workspace, proposals, chosen)
            session.workspace = workspace
            if hasattr(session, "revision"):
                session.revision += 1  # the live click route re-reads the workspace
        return names

    def _keep(self, session: Session | None, proposals: logic.ProposalSet | None,
              evt: gr.EventData, *, everything: bool | None = None) -> tuple:
        proposals = self._current(session, proposals)
        if everything is None:
            everything = getattr(getattr(evt, "target", None), "elem_id", "") == KEEP_ALL_ID
        names = self.keep_chosen(session, proposals, everything)
        counts: dict[str, int] = {}
        for name in names.values():
            counts[name] = counts.get(name, 0) + 1
        what = ", ".join(f"{n} × {name}" for name, n in counts.items())
        note = (f"Kept {len(names)} object{'s' if len(names) != 1 else ''} ({what}): refine "
                "any of them with clicks like any other object.")
        return (session,) + self.panel(session, None, note)


KEEP_ALL_ID = "proposals-keep-all"
