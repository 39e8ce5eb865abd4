"""Track by words against track by a box, same clip, same model, same run: what re-detection costs.

    python benchmarks/bench_text_video.py                     # 01_dog.mp4, 30 frames, tiny
    python benchmarks/bench_text_video.py --frames 60 --every 10 30 --model sam2.1-tiny

Runs, each on the first ``--frames`` frames of ``--clip`` (from ``../shared/media``) with our
SAM 2.1 tracker in fp32 (random full-size weights, written once to ``--cache``):

* ``box``: one box on frame 0, tracked forward (what a click-made track costs);
* ``words/N`` for each N of ``--every``: ``TextTracker`` with OWLv2 base/16 (the published
  architecture with random weights) finding "dog" on frame 0 and every N frames.

Printed per run: frames/s over the whole run, the detector's share of the time, detections
run, and object ids created. Speed does not depend on weight values, so the frames/s are
honest. **The ids are not**: random OWLv2 weights find arbitrary boxes (the threshold is set so
a few pass), so "a steady object keeps one id" can only be judged with the real weights; the
column is printed to show the mechanism works, and README says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEDIA = ROOT.parent / "shared" / "media"

from benchmarks.bench_common import DEFAULT_CACHE  # noqa: E402


class RandomBoxesDetector:
    """OWLv2 with random weights, keeping the ``keep`` best boxes a frame (so a run has a few
    objects, as a real "dog" would), timed as the real detector is."""

    name = "owlv2"

    def __init__(self, detector, keep: int) -> None:
        from sam_backends.video.text_tracking import Owlv2FrameDetector

        self.inner, self.keep = Owlv2FrameDetector(detector), keep

    def detect(self, frame, phrases, threshold):
        return sorted(self.inner.detect(frame, phrases, threshold), key=lambda d: -d.score)[
            :self.keep]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="01_dog.mp4")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--every", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--model", default="sam2.1-tiny")
    parser.add_argument("--keep", type=int, default=2, help="boxes kept per detection")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    clip = MEDIA / args.clip
    if not clip.is_file():
        parser.error(f"{clip} not found (the media live in ../shared/media)")

    from benchmarks.bench_common import ensure_random_checkpoint
    from sam_backends import Prompts, get_spec
    from sam_backends.testing.text_models import write_random_owlv2
    from sam_backends.text import load_owlv2
    from sam_backends.video import create_tracker, open_video
    from sam_backends.video.text_tracking import TextTracker, TextTrackParams

    checkpoint = ensure_random_checkpoint(args.model, args.cache)
    owl_folder = args.cache / "random-owlv2-base16"
    if not (owl_folder / "config.json").is_file():
        write_random_owlv2(owl_folder)
    tracker = create_tracker(get_spec(args.model), checkpoint=checkpoint, device="cpu",
                             precision="fp32")
    detector = RandomBoxesDetector(load_owlv2(owl_folder, "cpu", "fp32"), args.keep)
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.model} fp32; {args.frames} frames of {args.clip}", flush=True)

    rows = []
    video = open_video(clip, max_frames=args.frames)
    height, width = video.size
    session = tracker.start(video)
    started = time.perf_counter()
    session.add_prompts(0, 1, Prompts(box=(0.3 * width, 0.25 * height, 0.7 * width,
                                           0.85 * height)))
    frames = sum(1 for _ in session.propagate(0))
    seconds = time.perf_counter() - started
    rows.append(("box", frames / seconds, 0.0, 0, 1, seconds))
    for every in args.every:
        video = open_video(clip, max_frames=args.frames)
        run = TextTracker(tracker.start(video), detector,
                          TextTrackParams("dog", threshold=0.0, re_detect_every=every))
        started = time.perf_counter()
        frames = sum(1 for _ in run.run())
        seconds = time.perf_counter() - started
        result = run.result
        rows.append((f"words/{every}", frames / seconds, result.seconds["detect"] / seconds,
                     len(result.detection_frames), len(result.objects), seconds))

    print()
    print("| run | frames/s | vs box | detector share | detections | ids created | wall s |")
    print("|---|---|---|---|---|---|---|")
    base = rows[0][1]
    for name, fps, share, detections, ids, seconds in rows:
        print(f"| {name} | {fps:.3f} | {fps / base:.2f}x | {share:.0%} | {detections} | {ids} "
              f"| {seconds:.1f} |")
    print("\nids created: with random weights the detections are arbitrary; see the docstring.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
