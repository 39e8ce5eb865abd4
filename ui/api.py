"""The public API: named endpoints for scripts, services and agents (``gradio_client``).

``/segment`` (image file, model id, prompts JSON) -> (result JSON, cut-out PNG)::

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    result, cutout_png = client.predict(handle_file("dog.jpg"), "sam2.1-tiny",
                                        '{"points": [[320, 240]], "labels": [1]}',
                                        api_name="/segment")

Prompts JSON keys (all optional): ``points`` [[x, y], ...] in original-image pixels, ``labels``
[1 | 0, ...] (default: all 1 = foreground), ``box`` [x0, y0, x1, y1], ``multimask`` (true for
three candidates). Types are strict and the size is bounded before any model work
(``ctx.limits``, ``workbench.limits``: ``--max-points``, default 64 per object; 64 KiB of JSON).
The work is the one segment use case (``workbench.segment.use_case``) with ``Policy.SINGLE``
(exactly the masks asked for), as REST's; refusals are ``workbench.errors.failure_of``'s.
The result holds every mask as COCO RLE with its score, bbox and area, the index of the best
one (``best``, whose cut-out is returned), and the timings.

``/models`` -> the models this server offers and whether their weights are present.

The API is stateless (no session): each call stands alone, sharing only the embedding cache.

With ``--mcp`` both endpoints are also MCP tools, and the docstrings of ``segment`` and
``models`` are their descriptions, written for a model: Gradio joins the lines before ``Args:``
into the description, takes one line per argument and appends the ``Returns:`` lines. The
``request`` argument is Gradio's, injected per call, and not part of the tool schema.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr

from sam_backends import Prompts
from sam_backends.images import load_image
from sam_backends.prompts.prompt_parsing import (
    PROMPT_KEYS,  # noqa: F401 - re-exported for callers
    parse_prompts,
)
from ui.disconnects import caller_gone_check
from ui.feedback import api_error
from ui.proposals.api import register_proposals_api
from ui.sessions import caller_of
from ui.video.api import register_track_api
from workbench.context import AppContext
from workbench.errors import UserError, log
from workbench.exports import cutout_rgba, mask_record, png_bytes, safe_stem, write_kept
from workbench.lanes import CallerGoneError, Deadline
from workbench.segment import use_case
from workbench.segment.policy import Policy
from workbench.segment.use_case import Hooks, SegmentRequest

KEEP_OUTPUTS = 64  # cut-out files kept for Gradio to serve; older ones are deleted


class SegmentApi:
    """The endpoint functions, bound to one ``AppContext``."""

    def __init__(self, ctx: AppContext, blocks: gr.Blocks | None = None) -> None:
        self.ctx = ctx
        self.blocks = blocks  # to notice callers that disconnected while waiting
        self.abandoned = 0  # calls given up because their caller left (for tests and logs)
        self.out_dir = ctx.temp.path / "api"  # inside the run's temp folder: gone at shutdown
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def segment(self, image: str | None, model_id: str | None, prompts: str | None,
                request: gr.Request | None = None) -> tuple[dict[str, Any], str]:
        """Cut one object out of an image with Segment Anything, from points and/or a box.

        Pass the image as a data URI (data:image/png;base64,... or image/jpeg), or from
        gradio_client as handle_file(path); URLs are refused (this server fetches nothing
        a caller names). Coordinates are pixels of the original image: x to the
        right, y down, origin (0, 0) at the top-left corner, within its width and height.
        Prompts is a JSON text, e.g. {"points": [[320, 240]], "labels": [1]} or
        {"box": [100, 80, 420, 360]}: points [[x, y], ...] (64 at most by default), labels
        1 = on the object, 0 = background (default all 1), box [x0, y0, x1, y1] (top-left and
        bottom-right corners), both together allowed, "multimask": true for three candidates.
        The result JSON holds the image's width and height, "masks" (each a COCO RLE
        "segmentation" {"size": [H, W], "counts"}, its "score" (higher is better), "bbox"
        [x, y, w, h] and "area" in pixels), "best" (the index of the best mask) and timings;
        the cut-out is a PNG of the image, transparent outside the best mask. A "busy, retry
        in N s" error means other calls are waiting: retry after N seconds.
        Calls run one at a time; when too many wait, a call is refused at once rather than
        queued for long, and one still running past the server's time limit is stopped.

        Args:
            image: the image as a data URI: data:image/png;base64,... (not a URL or a path).
            model_id: a model_id from the models tool (empty: the server's default model).
            prompts: JSON text with "points" [[x, y], ...], "labels" [1|0, ...] and/or "box".

        Returns:
            result: JSON with masks (COCO RLE, score, bbox, area), best (index), image size.
            cutout: PNG cut-out of the best mask (RGBA, transparent outside the object).
        """
        operator = self.ctx.config.shows_operator_details
        deadline = Deadline(self.ctx.config.request_timeout_s, "The segment request")
        gone = caller_gone_check(self.blocks, getattr(request, "session_hash", None))
        try:
            model, parsed = self._parse(prompts, model_id)  # bad input never waits in line
            with self.ctx.api_lane.admit(deadline, gone, client=caller_of(request)):
                return self._segment(image, model, parsed, deadline)
        except CallerGoneError:
            self.abandoned += 1
            log.info("an API call was dropped: its caller disconnected while it waited")
            raise gr.Error("The caller disconnected.", print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - every failure becomes a friendly gr.Error
            raise api_error(exc, operator) from None

    def _parse(self, prompts_text: str | None, model_id: str | None) -> tuple[str, Prompts]:
        """The model and the prompts, refused before the lane when over ``ctx.limits`` or
        beyond what the model can take (``workbench.segment.use_case.check``)."""
        prompts = parse_prompts(prompts_text, self.ctx.limits.prompt_limits())
        model_id = use_case.resolve_model(self.ctx, model_id)
        use_case.check(self.ctx, model_id, (prompts,), self.ctx.limits)
        return model_id, prompts

    def _segment(self, image_path: str | None, model_id: str, prompts: Prompts,
                 deadline: Deadline) -> tuple[dict[str, Any], str]:
        start = time.perf_counter()
        deadline.check("waiting for its turn")
        if not image_path:
            raise UserError("Send an image file as the first argument.", "No image")
        image = load_image(image_path, max_pixels=self.ctx.config.max_image_pixels)
        result = use_case.segment(self.ctx, SegmentRequest(image, (prompts,), model_id),
                                  self.ctx.limits, Policy.SINGLE, Hooks(between=deadline.check))
        prediction = result.predictions[0]
        best = prediction.best_index
        masks = [mask_record(prediction.mask(i), prediction.scores[i])
                 for i in range(len(prediction.scores))]
        name = Path(image_path).name
        cutout = self._write(f"{safe_stem(name)}_cutout.png",
                             png_bytes(cutout_rgba(image, prediction.mask(best))))
        result = {
            "model_id": model_id,
            "image": {"file_name": name, "height": int(image.shape[0]),
                      "width": int(image.shape[1])},
            "best": best,
            "masks": masks,
            "timings": {
                "encode_s": round(result.encode_s, 4),
                "encode_cached": result.encode_cached,
                "decode_s": round(prediction.decode_seconds, 4),
                "total_s": round(time.perf_counter() - start, 4),
            },
        }
        return result, str(cutout)

    def _write(self, name: str, data: bytes) -> Path:
        return write_kept(self.out_dir, name, data, KEEP_OUTPUTS, self.ctx.temp.reserve)

    def models(self) -> list[dict[str, Any]]:
        """List the segmentation models this server offers; call it before segment.

        Each row: "model_id" (pass it to segment as model_id), "display_name", "family",
        "present" (its weights are on the server: prefer these), "custom" (the operator's own
        fine-tuned weights, not the official ones) and "capabilities" (the prompts it takes:
        "points", "box", "box+points").

        Returns:
            models: one JSON row per model: model_id, display_name, present, capabilities.
        """
        rows = []
        for model_id in self.ctx.model_ids:
            status = self.ctx.status(model_id)
            spec = self.ctx.spec(model_id)
            rows.append({
                "model_id": model_id,
                "display_name": status.display_name,
                "family": spec.family,
                "present": status.present,
                "custom": status.custom,  # the operator's own weights, not the official file
                "capabilities": spec.capabilities.as_list(),
                "download_command": (status.download_command
                                     if self.ctx.config.shows_operator_details else None),
            })
        return rows


def build_api(ctx: AppContext, blocks: gr.Blocks | None = None) -> SegmentApi:
    """Hidden components and the named endpoints ``/segment`` and ``/models``."""
    api = SegmentApi(ctx, blocks)
    with gr.Column(visible=False):
        image = gr.File(label="image", type="filepath", file_types=["image"])
        model_id = gr.Textbox(label="model_id", value=ctx.config.default_model)
        prompts = gr.Textbox(label="prompts_json", value="{}")
        result = gr.JSON(label="result")
        cutout = gr.Image(label="cutout", type="filepath", format="png", image_mode="RGBA")
        models = gr.JSON(label="models")
        segment_btn = gr.Button("segment")
        models_btn = gr.Button("models")
    # No Gradio concurrency limit: the API lane admits, bounds and refuses (see segment()).
    segment_btn.click(api.segment, [image, model_id, prompts], [result, cutout],
                      api_name="segment", concurrency_limit=None)
    models_btn.click(api.models, None, models, api_name="models", concurrency_limit=None)
    register_track_api(ctx, blocks)  # /track (ui.video.api)
    register_proposals_api(ctx, blocks)  # /segment_everything, /segment_text
    return api
