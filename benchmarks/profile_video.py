"""Where a tracked frame's time goes: SAM 2.1 video tracking split by module (ours, exact).

Times the image encoder, memory attention, memory encoder, prompt encoder and mask decoder
while ours tracks the first frames of a clip from one box on frame 0 (random full-size
weights, as ``bench_video.py``). It explains the frames/s that ``bench_video.py`` reports:
the image encoder and the memory attention (4 layers of cross-attention from 4,096 queries to
up to 7 x 4,096 memory tokens) take nearly all of it.

    python benchmarks/profile_video.py --model sam2.1-tiny --frames 10 --clip 01_dog.mp4
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("image_encoder", "memory_attention", "memory_encoder", "sam_prompt_encoder",
           "sam_mask_decoder")


def timed(module, name: str, totals: dict[str, float]) -> None:
    """Add the module's forward time to ``totals[name]`` (an instance attribute, this run only)."""
    forward = module.forward

    def run(*args, **kwargs):
        start = time.perf_counter()
        try:
            return forward(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - start

    module.forward = run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sam2.1-tiny")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--clip", default="01_dog.mp4")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    clip = ROOT.parent / "shared" / "media" / args.clip
    if not clip.is_file():
        print(f"skipped: {clip} not found (the benchmark clips live in ../shared/media)")
        return 0
    from bench_video import box_for, write_checkpoint

    from sam_backends import Prompts, get_spec
    from sam_backends.speed.accel import cpu_has_native_bf16, thread_count
    from sam_backends.video import create_tracker, open_video

    with tempfile.TemporaryDirectory(prefix="profile-video-") as temp:
        checkpoint = write_checkpoint(args.model, Path(temp))
        tracker = create_tracker(get_spec(args.model), checkpoint=checkpoint, device="cpu",
                                 precision=args.precision)
    totals: dict[str, float] = collections.defaultdict(float)
    for name in MODULES:
        timed(getattr(tracker.model, name), name, totals)
    video = open_video(clip, max_frames=args.frames)
    session = tracker.start(video)
    session.add_prompts(0, 1, Prompts(box=box_for(*video.size)))
    totals.clear()  # the prompted frame's encode is not part of tracking
    start = time.perf_counter()
    tracked = sum(1 for _ in session.propagate())
    elapsed = time.perf_counter() - start
    print(f"{args.model} {args.precision}, {args.clip}, {tracked} frames tracked in "
          f"{elapsed:.1f} s ({tracked / elapsed:.3f} frames/s); {thread_count()} threads, native "
          f"bf16: {'yes' if cpu_has_native_bf16() else 'no'}")
    print(f"{'module':<20} {'s/frame':>8} {'share':>6}")
    for name in MODULES:
        print(f"{name:<20} {totals[name] / tracked:>8.3f} {totals[name] / elapsed:>6.1%}")
    rest = elapsed - sum(totals.values())
    print(f"{'everything else':<20} {rest / tracked:>8.3f} {rest / elapsed:>6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
