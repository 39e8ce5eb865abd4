"""Named endpoints for many objects at once: ``/segment_everything`` and ``/segment_text``.

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    result, overlay_png = client.predict(handle_file("street.jpg"), "sam2.1-tiny",
                                         '{"points_per_side": 16}',
                                         api_name="/segment_everything")
    result, overlay_png = client.predict(handle_file("street.jpg"), "owlv2+sam2.1-tiny",
                                         "red car, bicycle", '{"threshold": 0.3}',
                                         api_name="/segment_text")

The result JSON holds every instance: its mask as COCO RLE (``segmentation``: {"size": [H, W],
"counts"}), ``bbox`` [x, y, w, h] and ``area`` (COCO), ``box`` [x0, y0, x1, y1], ``score``
and ``label`` (the phrase; "" for everything), plus the timings; the overlay is a PNG of the
image with every instance filled and outlined. Stateless like ``/segment``; calls pass the
same API lane (one at a time, a few waiting, the rest refused with "busy, retry in N s") and
stop at the server's request deadline, the everything grid and text runs between batches.

Limits (refused before any model work, each message naming it): the parameters JSON is at most
``--max-prompt-chars`` (64 KiB) and an object; everything's parameters are those of
``sam_backends.automatic.EverythingParams`` (upstream ``SamAutomaticMaskGenerator`` names:
``points_per_side``, ``pred_iou_thresh``, ``stability_score_thresh``, ``box_nms_thresh``,
``min_mask_region_area``, ...); text takes ``threshold`` in [0, 1] and the phrase limits of
``sam_backends.text`` (empty text, total length, number of phrases, unknown scripts).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import numpy as np

from sam_backends import Instances, PromptError
from sam_backends.images import load_image
from sam_backends.prompts.prompt_parsing import loads_bounded
from ui.disconnects import caller_gone_check
from ui.feedback import api_error
from ui.sessions import caller_of
from workbench.context import AppContext
from workbench.errors import UserError, log
from workbench.exports import mask_record, png_bytes, safe_stem, write_kept
from workbench.lanes import CallerGoneError, Deadline
from workbench.proposals import engines
from workbench.proposals.logic import check_threshold
from workbench.proposals.review import overlay

KEEP_OUTPUTS = 64  # overlay files kept for Gradio to serve; older ones are deleted
TEXT_KEYS = ("threshold",)
DEFAULT_TEXT_THRESHOLD = 0.3


def parse_params(text: str | None, max_chars: int, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The parameters JSON as a dict of known keys; "" or None is {}.

    Raises:
        PromptError: too long, not JSON, not an object, or an unknown key (the message lists
            the known ones).
    """
    if text is not None and not isinstance(text, str):
        raise PromptError("The parameters must be JSON text such as {\"points_per_side\": 16}, "
                          f"got a {type(text).__name__}.")
    text = (text or "").strip()
    if not text:
        return {}
    if len(text) > max_chars:
        raise PromptError(f"The parameters JSON has {len(text):,} characters; the limit is "
                          f"{max_chars:,}. Send only the parameters you change.")
    params = loads_bounded(text, "The parameters", '{"points_per_side": 16}')
    if not isinstance(params, dict):
        raise PromptError("The parameters must be a JSON object such as "
                          "{\"points_per_side\": 16}, got " + type(params).__name__ + ".")
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise PromptError(f"Unknown parameter(s) {', '.join(unknown)}; known: "
                          f"{', '.join(allowed)}.")
    return params


def instances_json(instances: Instances, model_id: str, name: str,
                   seconds: dict[str, float]) -> dict[str, Any]:
    """The result document: every instance as COCO RLE with score, box and label."""
    height, width = instances.image_size
    rows = []
    for i in range(len(instances)):
        record = mask_record(instances.masks[i], float(instances.scores[i]))
        record["box"] = [round(float(v), 2) for v in instances.boxes[i]]
        record["label"] = instances.labels[i]
        rows.append(record)
    return {
        "model_id": model_id,
        "pipeline": instances.model_id,
        "image": {"file_name": name, "height": height, "width": width},
        "count": len(instances),
        "instances": rows,
        "timings": {**{f"{k}_s": round(float(v), 4) for k, v in instances.seconds.items()},
                    **{k: round(v, 4) for k, v in seconds.items()}},
    }


class ProposalsApi:
    """The endpoint functions, bound to one ``AppContext``."""

    def __init__(self, ctx: AppContext, blocks: gr.Blocks | None = None) -> None:
        self.ctx = ctx
        self.blocks = blocks
        self.abandoned = 0
        self.out_dir = ctx.temp.path / "api-proposals"
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def segment_everything(self, image: str | None, model_id: str | None, params: str | None,
                           request: gr.Request | None = None) -> tuple[dict[str, Any], str]:
        """Find every object in an image with Segment Anything (a grid of point prompts).

        Pass the image from gradio_client as handle_file(path) or as a data URI. The model is
        a SAM 1 or SAM 2.1 model_id from the models tool (empty: the server's default).
        Params is a JSON object with the names of upstream's SamAutomaticMaskGenerator, all
        optional: points_per_side (grid size), pred_iou_thresh and stability_score_thresh
        (in [0, 1]), box_nms_thresh, min_mask_region_area (pixels). The result JSON lists
        every instance: "segmentation" (COCO RLE {"size": [H, W], "counts"}), "bbox" [x, y,
        w, h], "area", "box" [x0, y0, x1, y1], "score" and "label"; plus timings. A "busy,
        retry in N s" error means other calls are waiting.

        Args:
            image: the image file or data URI (not a URL).
            model_id: a SAM 1 / SAM 2.1 model_id (empty: the server's default model).
            params: JSON object, e.g. {"points_per_side": 16, "pred_iou_thresh": 0.8}.

        Returns:
            result: JSON with every instance (COCO RLE, score, box, label) and timings.
            overlay: PNG of the image with every instance outlined and filled.
        """
        return self._call("The segment_everything request", request,
                          lambda: self._parse_everything(params),
                          lambda parsed, deadline, cancel: self._everything(
                              image, model_id, parsed, deadline, cancel))

    def segment_text(self, image: str | None, model_id: str | None, text: str | None,
                     params: str | None, request: gr.Request | None = None
                     ) -> tuple[dict[str, Any], str]:
        """Find every object an English text names ("dog", "red car, bicycle") in an image.

        model_id "sam3" uses SAM 3, which reads the text itself; "owlv2+<sam model_id>" uses
        the OWLv2 detector to find boxes for the words and that SAM 1 / SAM 2.1 model to cut
        each box out; empty: SAM 3 when downloaded, else OWLv2 + the server's default model.
        Phrases are separated by commas. Params is a JSON object, optional: "threshold" in
        [0, 1] (the lowest score kept; default 0.3). The result JSON lists every instance as
        for segment_everything, with "label" the phrase that found it.

        Args:
            image: the image file or data URI (not a URL).
            model_id: "sam3" or "owlv2+<sam model_id>" (empty: the server's choice).
            text: what to find, phrases separated by commas, e.g. "red car, bicycle".
            params: JSON object, e.g. {"threshold": 0.3}.

        Returns:
            result: JSON with every instance (COCO RLE, score, box, label) and timings.
            overlay: PNG of the image with every instance outlined and filled.
        """
        return self._call("The segment_text request", request,
                          lambda: self._parse_text(text, params),
                          lambda parsed, deadline, cancel: self._text(
                              image, model_id, parsed, deadline, cancel))

    # --- shared path -------------------------------------------------------------------------

    def _call(self, what: str, request: gr.Request | None, parse: Callable[[], Any],
              run: Callable[..., tuple[dict[str, Any], str]]) -> tuple[dict[str, Any], str]:
        operator = self.ctx.config.shows_operator_details
        deadline = Deadline(self.ctx.config.request_timeout_s, what)
        gone = caller_gone_check(self.blocks, getattr(request, "session_hash", None))

        def cancel() -> bool:  # the engine stops between batches past the deadline
            return deadline.remaining <= 0 or gone()

        try:
            parsed = parse()  # bounded and typed: bad input never waits in line
            with self.ctx.proposals_lane.admit(deadline, gone, client=caller_of(request)):
                try:
                    return run(parsed, deadline, cancel)
                except engines.Cancelled:
                    if gone():
                        raise CallerGoneError() from None
                    deadline.check("finding the objects")
                    raise
        except CallerGoneError:
            self.abandoned += 1
            log.info("an API call was dropped: its caller disconnected")
            raise gr.Error("The caller disconnected.", print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - every failure becomes a friendly gr.Error
            raise api_error(exc, operator) from None

    def _parse_everything(self, params: str | None) -> dict[str, Any]:
        allowed = engines.everything_param_names()
        parsed = parse_params(params, self.ctx.config.max_prompt_chars, allowed)
        engines.everything_params_from(parsed)  # the engine validates values, names limits
        return parsed

    def _parse_text(self, text: str | None, params: str | None) -> tuple[tuple[str, ...], float]:
        parsed = parse_params(params, self.ctx.config.max_prompt_chars, TEXT_KEYS)
        threshold = check_threshold(parsed.get("threshold", DEFAULT_TEXT_THRESHOLD),
                                    "threshold")
        return engines.phrases(text), threshold

    def _load(self, image_path: str | None, deadline: Deadline) -> np.ndarray:
        deadline.check("waiting for its turn")
        if not image_path:
            raise UserError("Send an image file as the first argument.", "No image")
        return load_image(image_path, max_pixels=self.ctx.config.max_image_pixels)

    def _everything(self, image_path: str | None, model_id: str | None, params: dict[str, Any],
                    deadline: Deadline, cancel: Callable[[], bool]) -> tuple[dict, str]:
        start = time.perf_counter()
        model_id = (model_id or "").strip() or self.ctx.default_model()
        self.ctx.entry(model_id)
        image = self._load(image_path, deadline)
        instances = engines.everything_with(self.ctx, model_id, image, params, cancel=cancel)
        deadline.check("finding the objects")
        return self._answer(image, image_path, model_id, instances, start)

    def _text(self, image_path: str | None, model_id: str | None,
              parsed: tuple[tuple[str, ...], float], deadline: Deadline,
              cancel: Callable[[], bool]) -> tuple[dict, str]:
        start = time.perf_counter()
        phrases, threshold = parsed
        text_model, sam_model = engines.split_text_model(self.ctx, model_id)
        image = self._load(image_path, deadline)
        instances = engines.text(self.ctx, text_model, sam_model, image, phrases, threshold,
                                 cancel=cancel)
        deadline.check("finding the objects")
        model = f"{text_model}+{sam_model}" if text_model == engines.DETECTOR else text_model
        return self._answer(image, image_path, model, instances, start)

    def _answer(self, image: np.ndarray, image_path: str | None, model_id: str,
                instances: Instances, start: float) -> tuple[dict[str, Any], str]:
        name = Path(image_path or "image").name
        picture = self._write(f"{safe_stem(name)}_overlay.png", png_bytes(overlay(image,
                                                                                  instances)))
        result = instances_json(instances, model_id, name,
                                {"total_s": time.perf_counter() - start})
        return result, str(picture)

    def _write(self, name: str, data: bytes) -> Path:
        return write_kept(self.out_dir, name, data, KEEP_OUTPUTS, self.ctx.temp.reserve)


def register_proposals_api(ctx: AppContext, blocks: gr.Blocks | None = None) -> ProposalsApi:
    """Hidden components and the named endpoints ``/segment_everything`` and ``/segment_text``
    (call inside the app's Blocks context, like ``ui.api.build_api``)."""
    api = ProposalsApi(ctx, blocks)
    with gr.Column(visible=False):
        image = gr.File(label="image", type="filepath", file_types=["image"])
        model_id = gr.Textbox(label="model_id", value="")
        text = gr.Textbox(label="text", value="")
        params = gr.Textbox(label="params_json", value="{}")
        result = gr.JSON(label="result")
        picture = gr.Image(label="overlay", type="filepath", format="png")
        everything_btn = gr.Button("segment_everything")
        text_btn = gr.Button("segment_text")
    # No Gradio concurrency limit: the API lane admits, bounds and refuses.
    everything_btn.click(api.segment_everything, [image, model_id, params], [result, picture],
                         api_name="segment_everything", concurrency_limit=None)
    text_btn.click(api.segment_text, [image, model_id, text, params], [result, picture],
                   api_name="segment_text", concurrency_limit=None)
    return api
