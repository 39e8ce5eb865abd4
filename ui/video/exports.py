"""The video view's downloads: an H.264 overlay video (played in the page), a cut-out video on a
solid or chequered background, a ZIP of per-frame mask PNGs and a COCO RLE JSON, all written
by the engine (``sam_backends.video.exports``) into the session's own temp folder (removed
when the tab closes), named after the uploaded clip.

They are written without being asked, as the image views' downloads are: when a track (or a
find-by-words run, or a Stop) ends, in the "video-export" lane, each file offered as soon as it
is written (the overlay first). "Write again" redoes them after the options change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from ui.feedback import warn
from workbench.errors import UserError
from workbench.exports import safe_stem
from workbench.video.exports import write_overlay_mp4
from workbench.video.state import VideoSession

SOLID = "Solid colour"
CHEQUERED = "Chequered"


@dataclass
class ExportsPanel:
    audio: gr.Checkbox  # the original audio in the overlay video
    background: gr.Radio
    colour: gr.ColorPicker
    run: gr.Button
    player: gr.Video
    overlay: gr.DownloadButton
    cutout: gr.DownloadButton
    masks: gr.DownloadButton
    coco: gr.DownloadButton
    note: gr.Markdown

    def wire(self, handlers: Any, state: gr.State, after: list[Any]) -> Any:
        """The button, and the automatic writing after each dependency in ``after`` (the
        Track, Find and Stop events)."""
        export = VideoExports(handlers)
        inputs = [state, self.audio, self.background, self.colour]
        outputs = [self.player, self.overlay, self.cutout, self.masks, self.coco, self.note]
        lane = {"concurrency_id": "video-export", "concurrency_limit": 2,
                "api_visibility": "private"}
        for event in after:
            event.then(export.auto, inputs, outputs, show_progress="hidden", **lane)
        return self.run.click(export.run, inputs, outputs, show_progress="hidden", **lane)


def build_exports_panel() -> ExportsPanel:
    with gr.Accordion("Downloads", open=True, elem_id="video-exports"):
        gr.Markdown("Written when a track ends. The overlay video shows every object's mask in "
                    "its colour (H.264, plays in any browser); the cut-out video keeps only the "
                    "objects; the ZIP holds one black/white PNG per frame and object; the JSON "
                    "is standard COCO (one image per frame, each object's mask as an RLE "
                    "annotation with its track id), readable by COCO tools.")
        with gr.Row(equal_height=False):
            audio = gr.Checkbox(True, label="Keep the original audio (overlay)",
                                elem_id="video-export-audio")
            background = gr.Radio([SOLID, CHEQUERED], value=SOLID,
                                  label="Cut-out background", elem_id="video-export-bg")
            colour = gr.ColorPicker("#00b140", label="Solid colour",
                                    elem_id="video-export-colour")
            run = gr.Button("↻ Write again", scale=0, min_width=170,
                            elem_id="video-export")
        player = gr.Video(label="Overlay video", interactive=False, elem_id="video-player",
                          height=360, visible=False)
        with gr.Row():
            overlay = gr.DownloadButton("↓ Overlay MP4", interactive=False,
                                        elem_id="video-download-overlay")
            cutout = gr.DownloadButton("↓ Cut-out MP4", interactive=False,
                                       elem_id="video-download-cutout")
            masks = gr.DownloadButton("↓ Mask PNGs (ZIP)", interactive=False,
                                      elem_id="video-download-masks")
            coco = gr.DownloadButton("↓ COCO JSON", interactive=False,
                                     elem_id="video-download-coco")
        note = gr.Markdown("The downloads appear here when a track ends.",
                           elem_id="video-export-note")
    return ExportsPanel(audio, background, colour, run, player, overlay, cutout, masks, coco,
                        note)


def parse_colour(text: str | None) -> tuple[int, int, int]:
    """``"#00b140"`` or ``"rgba(0, 177, 64, 1)"`` (what Gradio's colour picker sends) -> RGB."""
    text = (text or "").strip()
    try:
        if text.startswith("#") and len(text) in (4, 7):
            digits = text[1:] if len(text) == 7 else "".join(c * 2 for c in text[1:])
            return tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
        if text.startswith("rgb"):
            parts = text[text.index("(") + 1:text.index(")")].split(",")[:3]
            return tuple(max(0, min(255, round(float(p)))) for p in parts)  # type: ignore
    except ValueError:
        pass
    raise UserError(f"The colour {text[:20]!r} is not understood; pick one with the picker.",
                    "Colour not understood")


def write_all(session: VideoSession, folder: Path, audio: bool, background: str,
              colour: tuple[int, int, int]) -> dict[str, Path]:
    """Write the four downloads of the session's track into ``folder``; name -> path."""
    return dict(write_each(session, folder, audio, background, colour))


def has_track(session: VideoSession | None) -> bool:
    return (session is not None and session.clip is not None and session.track is not None
            and bool(len(session.track)))


def write_each(session: VideoSession, folder: Path, audio: bool, background: str,
               colour: tuple[int, int, int]) -> Iterator[tuple[str, Path]]:
    """``write_all`` one file at a time, yielding (name, path) as each is written: the
    overlay (the one played in the page) first, so it can be offered before the rest."""
    from sam_backends.video import exports

    if not has_track(session):
        raise UserError("Track an object first (or at least click one on a frame).",
                        "Nothing to export")
    clip, track = session.clip, session.track
    stem = safe_stem(clip.name)
    names = {o.object_id: o.name for o in session.objects}
    out = {
        "overlay": folder / f"{stem}_overlay.mp4",
        "cutout": folder / f"{stem}_cutout.mp4",
        "masks": folder / f"{stem}_masks.zip",
        "coco": folder / f"{stem}_coco_rle.json",
    }
    write_overlay_mp4(clip.video, track, out["overlay"], copy_audio=audio)
    yield "overlay", out["overlay"]
    bg = exports.CHECKER if background == CHEQUERED else colour
    exports.write_cutout_mp4(clip.video, track, out["cutout"], background=bg)
    yield "cutout", out["cutout"]
    exports.write_mask_zip(track, out["masks"])
    yield "masks", out["masks"]
    exports.write_rle_json(clip.video, track, out["coco"], object_names=names)
    yield "coco", out["coco"]


class VideoExports:
    """Writing the downloads: after a track by itself (``auto``), or again (``run``)."""

    KEYS = ("overlay", "cutout", "masks", "coco")

    def __init__(self, handlers: Any) -> None:
        self.ctx = handlers.ctx
        self.operator = self.ctx.config.shows_operator_details

    def run(self, *args: Any) -> Iterator[tuple]:
        yield from self._guarded(self._run, *args)

    def auto(self, *args: Any) -> Iterator[tuple]:
        yield from self._guarded(self._auto, *args)

    def _guarded(self, handler: Any, *args: Any) -> Iterator[tuple]:
        """A streaming handler's failure becomes a message, and the buttons stay as they are
        (``ui.feedback.guard`` for generators)."""
        try:
            yield from handler(*args)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            warn(exc, self.operator)
            yield (gr.skip(),) * 5 + ("The downloads could not be written; see the message.",)

    def _run(self, session: VideoSession | None, audio: bool, background: str,
             colour: str) -> Iterator[tuple]:
        if session is None or session.clip is None:
            raise UserError("Upload a clip first (or pick the example).", "No video")
        session.check_idle()
        yield from self._write(session, audio, background, colour)

    def _auto(self, session: VideoSession | None, audio: bool, background: str,
              colour: str) -> Iterator[tuple]:
        """After a run: nothing to say when nothing was tracked, or when another job (a new
        track) already started: its own end writes the files."""
        if not has_track(session) or session.job is not None:
            yield (gr.skip(),) * 6
            return
        yield from self._write(session, audio, background, colour)

    def _write(self, session: VideoSession, audio: bool, background: str,
               colour: str) -> Iterator[tuple]:
        rgb = parse_colour(colour)
        folder = session.export_dir(self.ctx.export_parent)
        offered: dict[str, Any] = {key: gr.update(interactive=False) for key in self.KEYS}
        player: Any = gr.skip()
        yield (player, *offered.values(), "⏳ Writing the downloads…")
        for key, path in write_each(session, folder, bool(audio), background, rgb):
            offered[key] = gr.update(value=str(path), interactive=True)
            if key == "overlay":
                player = gr.update(value=str(path), visible=True)
            done = sum(1 for k in self.KEYS if k in offered and offered[k].get("interactive"))
            note = ("✓ The downloads are ready." if done == len(self.KEYS)
                    else f"⏳ Writing the downloads… {done} of {len(self.KEYS)} ready.")
            yield (player, *offered.values(), note)
            player = gr.skip()
