"""The video view's downloads: an H.264 overlay video (played in the page), a cut-out video on a
solid or chequered background, a ZIP of per-frame mask PNGs and a COCO RLE JSON, all written
by the engine (``sam_backends.video.exports``) into the session's own temp folder (removed
when the tab closes), named after the uploaded clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ui.feedback import guard
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

    def wire(self, handlers: Any, state: gr.State) -> Any:
        export = VideoExports(handlers)
        outputs = [self.player, self.overlay, self.cutout, self.masks, self.coco]
        return self.run.click(export.run, [state, self.audio, self.background, self.colour],
                              outputs, concurrency_id="video-export", concurrency_limit=2,
                              api_visibility="private", show_progress="full")


def build_exports_panel() -> ExportsPanel:
    with gr.Accordion("Downloads", open=True, elem_id="video-exports"):
        gr.Markdown("The overlay video shows every object's mask in its colour (H.264, plays "
                    "in any browser); the cut-out video keeps only the objects; the ZIP holds "
                    "one black/white PNG per frame and object; the JSON is standard COCO (one "
                    "image per frame, each object's mask as an RLE annotation with its "
                    "track id), readable by COCO tools.")
        with gr.Row(equal_height=False):
            audio = gr.Checkbox(True, label="Keep the original audio (overlay)",
                                elem_id="video-export-audio")
            background = gr.Radio([SOLID, CHEQUERED], value=SOLID,
                                  label="Cut-out background", elem_id="video-export-bg")
            colour = gr.ColorPicker("#00b140", label="Solid colour",
                                    elem_id="video-export-colour")
            run = gr.Button("Prepare downloads", variant="primary", scale=0, min_width=180,
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
    return ExportsPanel(audio, background, colour, run, player, overlay, cutout, masks, coco)


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
    from sam_backends.video import exports

    clip, track = session.clip, session.track
    if clip is None or track is None or not len(track):
        raise UserError("Track an object first (or at least click one on a frame).",
                        "Nothing to export")
    stem = safe_stem(clip.name)
    names = {o.object_id: o.name for o in session.objects}
    out = {
        "overlay": folder / f"{stem}_overlay.mp4",
        "cutout": folder / f"{stem}_cutout.mp4",
        "masks": folder / f"{stem}_masks.zip",
        "coco": folder / f"{stem}_coco_rle.json",
    }
    write_overlay_mp4(clip.video, track, out["overlay"], copy_audio=audio)
    bg = exports.CHECKER if background == CHEQUERED else colour
    exports.write_cutout_mp4(clip.video, track, out["cutout"], background=bg)
    exports.write_mask_zip(track, out["masks"])
    exports.write_rle_json(clip.video, track, out["coco"], object_names=names)
    return out


class VideoExports:
    """The "Prepare downloads" handler."""

    def __init__(self, handlers: Any) -> None:
        self.ctx = handlers.ctx
        skip = (gr.skip(),) * 5
        self.run = guard(lambda *a: skip, self.ctx.config.shows_operator_details)(self._run)

    def _run(self, session: VideoSession | None, audio: bool, background: str,
             colour: str, progress: gr.Progress = gr.Progress()) -> tuple:
        if session is None or session.clip is None:
            raise UserError("Upload a clip first (or pick the example).", "No video")
        session.check_idle()
        progress(0.1, desc="Writing the videos…")
        folder = session.export_dir(self.ctx.export_parent)
        files = write_all(session, folder, bool(audio), background, parse_colour(colour))
        ready = {key: gr.update(value=str(path), interactive=True)
                 for key, path in files.items()}
        return (gr.update(value=str(files["overlay"]), visible=True), ready["overlay"],
                ready["cutout"], ready["masks"], ready["coco"])
