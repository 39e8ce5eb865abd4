"""The video view's per-user data: the clip, its objects and prompts, the tracked masks, jobs.

One ``VideoSession`` per browser tab, held in ``gr.State`` and registered in
``ctx.sessions`` (under ``<session hash>-video``) so it is released when the tab closes or the
registry overflows. Nothing here is shared between users; the loaded tracker models are
(``ui.video.handlers.VideoServices``), since a tracker session is a value and one model serves
every user.

Shape of the data::

    VideoSession
      clip: Clip                       the opened video (lazy frames), its name and file
      objects: VideoObject, ...        each with a name, a colour slot and prompts per frame
      history: Edit, ...               every prompt change (undo = restore ``before``)
      track: MaskTrack                 frame -> {object id: mask} of the latest results
      engine: EngineSession            the tracker session behind ``track`` (rebuilt by replay
                                       when an edit cannot be applied incrementally)
      compare: CompareRun | None       two models' tracks of the same prompts, IoU per frame
      job: Job | None                  the running track/compare (Stop closes it)

Coordinates are original-frame pixels (as displayed, rotation applied), boxes XYXY.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sam_backends import Prompts
from sam_backends.video import MaskTrack, Video
from workbench.errors import UserError
from workbench.objects import PromptSet
from workbench.session import Session

SESSION_SUFFIX = "-video"
MAX_OBJECTS = 8  # one per palette colour; more would share colours
MAX_HISTORY = 200  # prompt edits kept for undo


@dataclass(frozen=True)
class Selection:
    """Which frames are processed: every ``stride``-th frame of ``start_s`` .. ``end_s``, at most
    ``max_frames`` of them (``sam_backends.video.open_video``'s arguments)."""

    stride: int = 1
    start_s: float = 0.0
    end_s: float | None = None
    max_frames: int | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, eq=False)
class Clip:
    """The session's video: the ``Video`` value, the uploaded file's name, the private copy of
    the file (kept in the session's folder, so Gradio's cache sweep cannot delete it under the
    lazy decoder), and the selection it was opened with."""

    video: Video
    name: str
    path: Path
    selection: Selection


@dataclass(frozen=True)
class VideoObject:
    """One tracked object: id (also its colour slot), name and prompts per frame.

    ``corrected``: the prompted frames whose first prompt came after tracking had already given
    the object a result there (a mask, empty or not): corrections of the track, as opposed to
    prompts on frames the tracker had not reached. A frame leaves it when its prompts go.
    """

    object_id: int
    name: str
    prompts: tuple[tuple[int, PromptSet], ...] = ()  # (frame index, prompts), sorted by frame
    corrected: tuple[int, ...] = ()  # sorted frame indices, each also in ``prompts``

    def on(self, frame: int) -> PromptSet:
        return dict(self.prompts).get(frame, PromptSet())

    def with_prompts(self, frame: int, prompts: PromptSet,
                     corrects: bool = False) -> VideoObject:
        """The object with ``prompts`` on ``frame`` (none: the frame's prompts go);
        ``corrects``: they correct a tracked result there (see ``corrected``)."""
        table = dict(self.prompts)
        corrected = set(self.corrected)
        if prompts.is_empty:
            table.pop(frame, None)
            corrected.discard(frame)
        else:
            table[frame] = prompts
            if corrects:
                corrected.add(frame)
        return dataclasses.replace(self, prompts=tuple(sorted(table.items())),
                                   corrected=tuple(sorted(corrected)))

    @property
    def frames(self) -> tuple[int, ...]:
        return tuple(frame for frame, _ in self.prompts)

    @property
    def is_empty(self) -> bool:
        return not self.prompts


@dataclass(frozen=True)
class Edit:
    """One undoable prompt change of one object on one frame."""

    object_id: int
    frame: int
    before: PromptSet
    after: PromptSet


@dataclass
class CompareRun:
    """Two models' tracks of the same prompts over the same frames.

    ``seconds``: tracking wall time per model (for frames/s); ``ious``: per frame, the mean IoU
    of the two models' masks over the objects (an object empty in both counts as 1).
    """

    models: tuple[str, str]
    tracks: tuple[MaskTrack, MaskTrack]
    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0])
    frames_done: list[int] = field(default_factory=lambda: [0, 0])
    ious: dict[int, float] = field(default_factory=dict)
    finished: bool = False

    def fps(self, which: int) -> float | None:
        seconds = self.seconds[which]
        return self.frames_done[which] / seconds if seconds > 0 else None


def mask_iou(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """IoU of two bool masks; None counts as empty; two empty masks agree fully (1.0)."""
    a_any = a is not None and bool(a.any())
    b_any = b is not None and bool(b.any())
    if not a_any and not b_any:
        return 1.0
    if not a_any or not b_any:
        return 0.0
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union)


def frame_iou(track_a: MaskTrack, track_b: MaskTrack, frame: int,
              object_ids: list[int]) -> float | None:
    """Mean IoU over ``object_ids`` on ``frame``; None when neither model tracked it."""
    if frame not in track_a and frame not in track_b:
        return None
    masks_a = track_a[frame] if frame in track_a else {}
    masks_b = track_b[frame] if frame in track_b else {}
    if not object_ids:
        return None
    return float(np.mean([mask_iou(masks_a.get(o), masks_b.get(o)) for o in object_ids]))


class StopRequested(Exception):
    """The user pressed Stop; the job ended early (results so far are kept)."""


def _advance(iterator: Iterator[Any], around: Callable[[], Any] | None) -> Any:
    """``next(iterator)`` inside ``around()`` when given (``Job.steps``)."""
    if around is None:
        return next(iterator)
    with around():
        return next(iterator)


class Job:
    """A running track or compare: the engine iterator it consumes, and how to stop it.

    ``steps(iterator)`` yields the iterator's items one at a time, holding ``_step`` only while
    the engine computes a frame (never across the caller's ``yield``). ``stop()`` only sets a
    flag: the handler's loop ends after the frame in progress, and its ``finally`` calls
    ``finish()``, which closes the engine iterator and frees the session. When Gradio cancels
    the event instead, it closes the handler's generator, whose ``finally`` does the same.
    (An earlier version finished the job from the Stop handler's thread too; racing Gradio's
    close, it could leave the page waiting.)
    """

    def __init__(self, kind: str, on_finish: Callable[[Job], None]) -> None:
        self.kind = kind
        self.started = time.perf_counter()
        self._stop = threading.Event()
        self._step = threading.Lock()
        self._finishing = threading.Lock()
        self._iterators: list[Iterator[Any]] = []
        self._on_finish = on_finish
        self.finished = False

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def steps(self, iterator: Iterator[Any],
              around: Callable[[], Any] | None = None) -> Iterator[Any]:
        """The items of ``iterator``; ``around()`` (a context manager, e.g. the encoder lane)
        is entered for each step.

        Every step runs on one thread of the job's own (``SerialThread``), ``around()`` with
        it, and that thread ends with the loop. Why: the caller is often a Gradio handler,
        which advances its generator from whichever worker thread is free, and each thread
        that runs PyTorch keeps an OpenMP pool while it lives (``workbench.threads``): a
        worker idles 10 s before it ends, slowing every click meanwhile. One thread per job
        also keeps a step's thread-local state (``give_way``'s budget, PyTorch's modes) on
        the thread that entered it.
        """
        from workbench.threads import SerialThread

        self._iterators.append(iterator)
        runner = SerialThread("samwb-track")
        try:
            while True:
                if self._stop.is_set() or self.finished:
                    return
                with self._step:
                    if self._stop.is_set() or self.finished:
                        return
                    try:
                        item = runner.run(lambda: _advance(iterator, around))
                    except StopIteration:
                        return
                yield item
        finally:
            runner.close()

    def stop(self, wait_s: float = 0.0) -> None:
        """Ask the job to stop after the frame in progress (its handler then finishes it).

        ``wait_s`` > 0 (a session being released, whose handler may never run again): wait
        that long for the frame in progress, then close and finish the job here.
        """
        self._stop.set()
        if wait_s > 0 and self._step.acquire(timeout=wait_s):
            try:
                self.finish()
            finally:
                self._step.release()

    def finish(self) -> None:
        """Close the engine iterators and free the session (idempotent, thread-safe)."""
        with self._finishing:
            if self.finished:
                return
            self.finished = True
            for iterator in self._iterators:
                close = getattr(iterator, "close", None)
                if close is not None:
                    try:
                        close()
                    except (ValueError, RuntimeError):  # still executing in another thread
                        pass
        self._on_finish(self)


class VideoSession(Session):
    """One tab's video view (see the module docstring).

    ``lock`` serialises everything that touches the engine session (clicks, undo, tracking);
    a click that arrives while a job runs is refused with a message instead of waiting.
    """

    def __init__(self, session_id: str, model_id: str) -> None:
        super().__init__(session_id, model_id)
        self.clip: Clip | None = None
        self.objects: tuple[VideoObject, ...] = ()
        self.active_id = 0
        self.next_id = 1
        self.history: tuple[Edit, ...] = ()
        self.track: MaskTrack | None = None
        self.engine: Any = None  # the engine's tracker session for ``model_id``
        self.engine_stale = False  # an edit the engine has not seen: replay before using it
        self.frame = 0  # the frame shown
        self.playing = False  # Play's timer runs; Pause clears it before any tick re-arms it
        self.compare: CompareRun | None = None
        self.job: Job | None = None
        self.lock = threading.RLock()
        self.last_run: dict[str, Any] = {}  # what the latest job did (frames, seconds, stopped)
        self._video_dir: Path | None = None
        self._placeholder: VideoObject | None = self.new_object()

    def nbytes(self) -> int:
        """``Session.nbytes`` plus the tracked masks (RLE text) and the engine's tracking
        state (memory features, logits, cached frame features), for the sessions' budget."""
        total = super().nbytes()
        track = self.track
        if track is not None:
            total += int(track.nbytes)
        engine = self.engine
        if engine is not None:
            try:
                total += int(getattr(engine, "state_nbytes", 0) or 0)
            except RuntimeError:  # a job is changing the state right now: counted next time
                pass
        return total

    # --- the clip ----------------------------------------------------------------------------

    @property
    def has_video(self) -> bool:
        return self.clip is not None

    @property
    def video(self) -> Video | None:
        clip = self.clip
        return None if clip is None else clip.video

    def video_dir(self, parent: Path | None = None) -> Path:
        """A private folder for this session's copy of the uploaded clip (removed on release)."""
        if self._video_dir is None or not self._video_dir.is_dir():
            if parent is not None:
                Path(parent).mkdir(parents=True, exist_ok=True)
            self._video_dir = Path(tempfile.mkdtemp(prefix="video-", dir=parent))
        return self._video_dir

    def set_clip(self, clip: Clip) -> None:
        """Show ``clip`` from its first frame, with one empty object and no results."""
        self.drop_engine()
        self.clip = clip
        self.display_src = None  # the canvas's frame of the previous clip
        self.generation += 1
        self.frame = 0
        self.playing = False
        self.track = MaskTrack(clip.video.size)
        self.compare = None
        self.history = ()
        self.last_run = {}
        self.objects, self.next_id = (), 1
        self._placeholder = self.new_object()

    def drop_engine(self) -> None:
        """Forget the tracker session (its memory goes with it)."""
        self.engine = None
        self.engine_stale = False

    # --- objects -----------------------------------------------------------------------------

    @property
    def active(self) -> VideoObject:
        for obj in self.objects:
            if obj.object_id == self.active_id:
                return obj
        raise LookupError(f"no object {self.active_id}")  # unreachable by construction

    def get(self, object_id: int) -> VideoObject | None:
        return next((o for o in self.objects if o.object_id == object_id), None)

    def new_object(self, name: str | None = None) -> VideoObject:
        """Start another object and make it active; an empty active object is reused."""
        if self.objects and self.active.is_empty:
            if name:
                self.rename(self.active_id, name)
            return self.active
        if len(self.objects) >= MAX_OBJECTS:
            raise UserError(f"At most {MAX_OBJECTS} objects per video; delete one first.",
                            "Too many objects")
        obj = VideoObject(self.next_id, name or f"Object {self.next_id}")
        self.objects += (obj,)
        self.active_id = obj.object_id
        self.next_id += 1
        return obj

    def add_object(self, object_id: int, name: str | None = None) -> VideoObject:
        """An object with the caller's id (the ``/track`` API), or the existing one."""
        existing = self.get(object_id)
        if existing is not None and existing is not self._placeholder:
            if name:
                self.rename(object_id, name)
            return existing
        placeholder = self._placeholder
        self._placeholder = None
        if placeholder is not None and placeholder.is_empty:  # the object made at start
            self.objects = tuple(o for o in self.objects if o.object_id != placeholder.object_id)
        if len(self.objects) >= MAX_OBJECTS:
            raise UserError(f"At most {MAX_OBJECTS} objects per video.", "Too many objects")
        obj = VideoObject(object_id, name or f"Object {object_id}")
        self.objects += (obj,)
        self.active_id = object_id
        self.next_id = max(self.next_id, object_id + 1)
        return obj

    def rename(self, object_id: int, name: str) -> None:
        name = " ".join(str(name).split())[:40]
        if not name:
            return
        self.objects = tuple(dataclasses.replace(o, name=name) if o.object_id == object_id
                             else o for o in self.objects)

    def select(self, object_id: int) -> None:
        if self.get(object_id) is not None:
            self.active_id = object_id

    def delete(self, object_id: int) -> None:
        """Remove an object, its prompts, undo steps and masks; the engine is replayed."""
        if self.get(object_id) is None:
            return
        self.objects = tuple(o for o in self.objects if o.object_id != object_id)
        self.history = tuple(e for e in self.history if e.object_id != object_id)
        if self.track is not None:
            self.track.remove_object(object_id)
        self.compare = None
        self.engine_stale = True
        if not self.objects:
            self.new_object()
        elif self.active_id == object_id:
            self.active_id = self.objects[-1].object_id

    def _replace(self, obj: VideoObject) -> None:
        self.objects = tuple(obj if o.object_id == obj.object_id else o for o in self.objects)

    def set_prompts(self, object_id: int, frame: int, prompts: PromptSet,
                    record: bool = True) -> Edit:
        """Record new prompts of an object on a frame (one undoable edit).

        Call it before the new prompts' mask goes into ``track``: the first prompts on a frame
        where the track already holds a result for the object are a correction
        (``VideoObject.corrected``)."""
        obj = self.get(object_id)
        if obj is None:
            raise UserError(f"Object {object_id} does not exist any more.", "Object gone")
        before = obj.on(frame)
        corrects = before.is_empty and self.track is not None and \
            self.track.rle(frame, object_id) is not None
        edit = Edit(object_id, frame, before, prompts)
        self._replace(obj.with_prompts(frame, prompts, corrects))
        if record:
            self.history = (self.history + (edit,))[-MAX_HISTORY:]
        return edit

    def undo(self) -> Edit | None:
        """Restore the prompts before the latest edit; None when there is nothing to undo."""
        if not self.history:
            return None
        edit = self.history[-1]
        self.history = self.history[:-1]
        obj = self.get(edit.object_id)
        if obj is not None:
            self._replace(obj.with_prompts(edit.frame, edit.before))
        return edit

    def prompted(self) -> list[tuple[int, int, PromptSet]]:
        """Every (frame, object id, prompts), in frame order then object order."""
        items = [(frame, o.object_id, p) for o in self.objects for frame, p in o.prompts]
        return sorted(items, key=lambda item: (item[0], item[1]))

    @property
    def prompted_frames(self) -> list[int]:
        return sorted({frame for frame, _, _ in self.prompted()})

    @property
    def tracked_ids(self) -> list[int]:
        return [o.object_id for o in self.objects if not o.is_empty]

    # --- jobs --------------------------------------------------------------------------------

    def begin_job(self, kind: str) -> Job:
        """Start a track/compare job, or refuse when one runs already in this tab."""
        with self.lock:
            if self.job is not None and not self.job.finished:
                raise UserError(f"A {self.job.kind} is running in this tab; wait for it or "
                                "press Stop.", "Busy")
            self.job = Job(kind, self._job_done)
            return self.job

    def _job_done(self, job: Job) -> None:
        with self.lock:
            if self.job is job:
                self.job = None

    def stop(self) -> bool:
        """Stop the running job (False when none runs)."""
        job = self.job
        if job is None or job.finished:
            return False
        job.stop()
        return True

    @property
    def busy(self) -> bool:
        job = self.job
        return job is not None and not job.finished

    def check_idle(self) -> None:
        if self.busy:
            raise UserError("Tracking is running; press Stop or wait for it to finish before "
                            "changing the prompts.", "Busy")

    # --- release -----------------------------------------------------------------------------

    def release(self) -> None:
        """Stop any job and drop the clip, tracker session, masks and files."""
        job = self.job
        if job is not None:
            job.stop(wait_s=5.0)
        self.drop_engine()
        self.clip = None
        self.track = None
        self.compare = None
        self.objects, self.next_id, self.history = (), 1, ()
        self.new_object()
        super().release()
        if self._video_dir is not None:
            shutil.rmtree(self._video_dir, ignore_errors=True)
            self._video_dir = None


def to_prompts(prompts: PromptSet) -> Prompts:
    """The engine's ``Prompts`` for one object's prompts on one frame."""
    return Prompts(points=prompts.points, labels=prompts.labels, box=prompts.box)
