"""Instance proposals as values: which are shown, which are selected, and keeping them.

Pure data and transitions (no Gradio, no models), unit-tested without a browser. A run of
"segment everything" or of a text prompt gives ``sam_backends.Instances``; ``from_instances``
turns it into a ``ProposalSet`` (bit-packed masks, a preview-size copy for the review image),
the person toggles proposals and moves a score threshold, and ``keep`` turns the chosen ones
into ordinary objects of the segment view's ``Workspace``:

* each kept proposal becomes a new ``SegObject`` whose one step has the proposal's box as its
  prompt and the proposal's mask as its result, so a click refines it like any other object
  (the click is added to the box prompt; the mask's low-res logits are fed back when the
  engine supplied them and they come from the model the session uses);
* the object is named after the text phrase that found it ("dog"), or "object" for
  "everything" proposals (``object_name``).

Coordinates are original-image pixels (x, y), boxes XYXY, as everywhere in the app.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sam_backends import Instances
from workbench.errors import UserError
from workbench.objects import MaskResult, PromptSet, SegObject, Step, Workspace
from workbench.render import fit_size, resize_nearest

MAX_PROPOSALS = 256  # the best-scoring ones are kept beyond this (memory: packed masks)
PREVIEW_SIDE = 1280  # the review image's longer side, as the segment view's canvas
DEFAULT_THRESHOLD = 0.5
EVERYTHING_NAME = "object"


@dataclass(frozen=True, eq=False)
class Proposal:
    """One instance proposal.

    Attributes:
        index: position in its ``ProposalSet`` (stable while the set lives).
        result: the mask at full resolution, bit-packed, with score, logits and model id, in
            the form a ``Step`` shows it.
        box: XYXY pixels: the prompt that reproduces and refines the mask.
        label: the phrase that found it ("" for "everything").
        small: the mask at the review image's size, bit-packed (``small_mask``).
    """

    index: int
    result: MaskResult
    box: tuple[float, float, float, float]
    label: str
    small: np.ndarray = field(repr=False)
    small_shape: tuple[int, int] = (0, 0)

    @property
    def score(self) -> float:
        return self.result.score

    def small_mask(self) -> np.ndarray:
        height, width = self.small_shape
        return np.unpackbits(self.small, count=height * width).reshape(height, width).view(bool)


@dataclass(frozen=True, eq=False)
class ProposalSet:
    """The proposals of one run on one image, and what the person chose so far.

    Attributes:
        digest, generation: the image they belong to (``Session.digest`` / ``generation``);
            keeping them on another image is refused.
        query: what was asked, for the status line ("dog, cat" or "everything, 16 per side").
        model_id: the engine's model or pipeline id (e.g. "owlv2+sam2.1-tiny").
        run_threshold: the score floor the engine ran with: a lower ``threshold`` shows
            nothing more (run again for that).
        threshold: proposals scoring below it are hidden and never kept.
        selected: indices of the proposals the person picked ("Keep selected").
        seconds: the engine's wall time per stage.
        dropped: proposals left out beyond ``MAX_PROPOSALS``.
    """

    digest: str
    generation: int
    image_size: tuple[int, int]
    query: str
    model_id: str
    proposals: tuple[Proposal, ...]
    run_threshold: float = 0.0
    threshold: float = DEFAULT_THRESHOLD
    selected: frozenset[int] = frozenset()
    seconds: dict[str, float] = field(default_factory=dict)
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.proposals)

    @property
    def visible(self) -> tuple[Proposal, ...]:
        """The proposals at or above the threshold, best score first."""
        return tuple(p for p in self.proposals if p.score >= self.threshold)

    @property
    def chosen(self) -> tuple[Proposal, ...]:
        """Selected and visible: what "Keep selected" keeps."""
        return tuple(p for p in self.visible if p.index in self.selected)


def check_threshold(value: float | int | str | None, what: str = "The score threshold") -> float:
    """``value`` as a float in [0, 1], or a ``UserError`` naming the range."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number between 0 and 1, got {value!r}.",
                        "Cannot use this threshold") from None
    if not 0.0 <= number <= 1.0:  # also refuses NaN
        raise UserError(f"{what} must be between 0 and 1 (inclusive), got {number:g}.",
                        "Cannot use this threshold")
    return number


def _pack(mask: np.ndarray) -> np.ndarray:
    bits = np.packbits(np.asarray(mask, bool), axis=None)
    bits.setflags(write=False)
    return bits


def refine_model_for(instances_model: str, session_model: str) -> str:
    """The model id recorded on a kept mask: the session's model when the mask came from it
    (directly, or as the SAM of a detector pipeline "owlv2+<sam>"), so a click refines it
    without re-running; otherwise the pipeline's own id (a later click re-runs on the box)."""
    if instances_model == session_model or instances_model.split("+")[-1] == session_model:
        return session_model
    return instances_model or session_model


def from_instances(instances: Instances, *, digest: str, generation: int, query: str,
                   session_model: str, run_threshold: float = 0.0,
                   threshold: float = DEFAULT_THRESHOLD,
                   preview_side: int = PREVIEW_SIDE) -> ProposalSet:
    """A ``ProposalSet`` for an engine result on the image ``digest``.

    The best ``MAX_PROPOSALS`` are kept, best score first; empty masks are dropped. When the
    engine attached ``low_res_logits`` (N x 256 x 256) they are stored for refinement.
    """
    threshold = check_threshold(threshold)
    order = np.argsort(-instances.scores, kind="stable")
    order = [int(i) for i in order if instances.masks[i].any()]
    dropped = max(0, len(order) - MAX_PROPOSALS)
    order = order[:MAX_PROPOSALS]
    logits = getattr(instances, "low_res_logits", None)
    model_id = refine_model_for(instances.model_id, session_model)
    height, width = instances.image_size
    small_size = fit_size(height, width, preview_side)
    proposals = []
    for index, i in enumerate(order):
        mask = instances.masks[i]
        low_res = None if logits is None else np.asarray(logits[i], np.float32)
        result = MaskResult.from_mask(mask, float(instances.scores[i]), low_res, model_id)
        x0, y0, x1, y1 = (float(v) for v in instances.boxes[i])
        if x1 <= x0 or y1 <= y0:  # a detector box may be degenerate: use the mask's
            x0, y0, x1, y1 = (float(v) for v in result.bbox)
        small = resize_nearest(mask, small_size)
        proposals.append(Proposal(index, result, (x0, y0, x1, y1), instances.labels[i],
                                  _pack(small), small_size))
    return ProposalSet(digest=digest, generation=generation, image_size=(height, width),
                       query=query, model_id=instances.model_id, proposals=tuple(proposals),
                       run_threshold=float(run_threshold), threshold=threshold,
                       seconds=dict(instances.seconds), dropped=dropped)


# --- choosing --------------------------------------------------------------------------------

def with_threshold(proposals: ProposalSet, threshold: float) -> ProposalSet:
    return dataclasses.replace(proposals, threshold=check_threshold(threshold))


def toggle(proposals: ProposalSet, index: int) -> ProposalSet:
    """Select or unselect proposal ``index``; a hidden or unknown index is ignored."""
    if index not in {p.index for p in proposals.visible}:
        return proposals
    return dataclasses.replace(proposals, selected=proposals.selected ^ {index})


def proposal_at(proposals: ProposalSet, x: float, y: float) -> Proposal | None:
    """The visible proposal under pixel (x, y): the smallest one containing it (a click on a
    wheel means the wheel, not the car), None when no visible mask covers the pixel."""
    height, width = proposals.image_size
    col, row = int(x), int(y)
    if not (0 <= col < width and 0 <= row < height):
        return None
    hits = [p for p in proposals.visible if _covers(p.result, row, col)]
    return min(hits, key=lambda p: (p.result.area, p.index)) if hits else None


def _covers(result: MaskResult, row: int, col: int) -> bool:
    x0, y0, x1, y1 = result.bbox
    if not (x0 <= col < x1 and y0 <= row < y1):
        return False
    flat = row * result.shape[1] + col
    return bool((result.bits[flat >> 3] >> (7 - (flat & 7))) & 1)


def toggle_at(proposals: ProposalSet, x: float, y: float) -> tuple[ProposalSet, Proposal | None]:
    """Toggle the proposal under (x, y) (see ``proposal_at``); returns it too (or None)."""
    hit = proposal_at(proposals, x, y)
    return (proposals, None) if hit is None else (toggle(proposals, hit.index), hit)


def select_all(proposals: ProposalSet) -> ProposalSet:
    return dataclasses.replace(proposals, selected=frozenset(p.index for p in proposals.visible))


def select_none(proposals: ProposalSet) -> ProposalSet:
    return dataclasses.replace(proposals, selected=frozenset())


# --- keeping ---------------------------------------------------------------------------------

def object_name(label: str) -> str:
    """The name of an object made from a proposal: its phrase, or "object" (everything)."""
    return label.strip() or EVERYTHING_NAME


def keep(workspace: Workspace, proposals: ProposalSet, chosen: Sequence[Proposal]
         ) -> tuple[Workspace, dict[int, str]]:
    """Add one object per chosen proposal; returns the new workspace and {object id: name}.

    Each object gets a single undoable step: prompt = the proposal's box, result = its mask.
    An empty active object is reused for the first one (as "New object" does); the last one
    added becomes active. The name is stored on the object (``SegObject.renamed``).
    """
    names: dict[int, str] = {}
    for proposal in chosen:
        workspace = workspace.new_object()
        obj: SegObject = workspace.active  # empty: reused or fresh
        step = Step(PromptSet(box=proposal.box), proposal.result)
        obj = obj.record(step)
        name = object_name(proposal.label)
        if hasattr(obj, "renamed"):
            obj = obj.renamed(name)
        names[obj.object_id] = name
        workspace = workspace.update(obj)
    return workspace, names


def check_same_image(proposals: ProposalSet, digest: str, generation: int) -> None:
    """Refuse proposals made on another image than the session's current one."""
    if proposals.digest != digest or proposals.generation != generation:
        raise UserError("These proposals belong to the previous image; run Everything or the "
                        "text prompt again on this one.", "Proposals are out of date")


def summary(proposals: ProposalSet) -> str:
    """One status line: how many were found, shown and selected, and how long it took."""
    shown = len(proposals.visible)
    chosen = len(proposals.chosen)
    total = sum(proposals.seconds.values())
    parts = [f"**{len(proposals)}** proposal{'s' if len(proposals) != 1 else ''} for "
             f"*{proposals.query}*", f"{shown} at score ≥ {proposals.threshold:.2f}",
             f"{chosen} selected"]
    if total:
        parts.append(f"{total:.1f} s")
    line = " · ".join(parts) + "."
    if proposals.threshold < proposals.run_threshold:
        line += (f" The run kept only scores ≥ {proposals.run_threshold:.2f}: run again to see "
                 "lower ones.")
    if proposals.dropped:
        line += f" {proposals.dropped} more were left out (at most {MAX_PROPOSALS})."
    return line
