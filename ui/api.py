"""The public API: named endpoints for scripts, services and agents (``gradio_client``).

``/segment`` (image file, model id, prompts JSON) -> (result JSON, cut-out PNG)::

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    result, cutout_png = client.predict(handle_file("dog.jpg"), "sam2.1-tiny",
                                        '{"points": [[320, 240]], "labels": [1]}',
                                        api_name="/segment")

Prompts JSON keys (all optional): ``points`` [[x, y], ...] in original-image pixels, ``labels``
[1 | 0, ...] (default: all 1 = foreground), ``box`` [x0, y0, x1, y1], ``multimask`` (three
candidates). The result holds every mask as COCO RLE with its score, bbox and area, the index
of the best one (``best``, whose cut-out is returned), and the timings.

``/models`` -> the models this server offers and whether their weights are present.

The API is stateless (no session): each call stands alone, sharing only the embedding cache.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import gradio as gr

from sam_backends import PromptError, Prompts
from sam_backends.images import load_image

from .context import AppContext
from .errors import UserError, api_error
from .exports import cutout_rgba, mask_record, png_bytes, safe_stem

PROMPT_KEYS = ("points", "labels", "box", "multimask")
KEEP_OUTPUTS = 64  # cut-out files kept for Gradio to serve; older ones are deleted


def parse_prompts(text: str | None) -> Prompts:
    """Prompts from the API's JSON text; an empty text means no prompt (rejected later).

    Raises:
        PromptError: not JSON, not an object, unknown keys, or invalid values.
    """
    if text is None or not str(text).strip():
        data: Any = {}
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PromptError(
                f"The prompts are not valid JSON ({exc.msg} at character {exc.pos}); send e.g. "
                '{"points": [[120, 80]], "labels": [1]}.'
            ) from None
    if not isinstance(data, dict):
        raise PromptError('The prompts must be a JSON object such as {"box": [10, 20, 200, 300]}.')
    unknown = sorted(set(data) - set(PROMPT_KEYS))
    if unknown:
        raise PromptError(f"Unknown prompt key(s) {', '.join(unknown)}; use "
                          f"{', '.join(PROMPT_KEYS)}.")
    points = data.get("points") or []
    if not isinstance(points, list):
        raise PromptError("points must be a list of [x, y] pairs.")
    labels = data.get("labels")
    if labels is None:
        labels = [1] * len(points)
    if not isinstance(labels, list):
        raise PromptError("labels must be a list of 1 (foreground) or 0 (background).")
    return Prompts(points=points, labels=labels, box=data.get("box"),
                   multimask=bool(data.get("multimask", False)))


class SegmentApi:
    """The endpoint functions, bound to one ``AppContext``."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.out_dir = Path(tempfile.mkdtemp(prefix="samwb-api-"))

    def segment(self, image: str | None, model_id: str | None, prompts: str | None
                ) -> tuple[dict[str, Any], str]:
        """Segment one object. Returns (result JSON, path of the best mask's cut-out PNG)."""
        try:
            return self._segment(image, model_id, prompts)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a friendly gr.Error
            raise api_error(exc) from None

    def _segment(self, image_path: str | None, model_id: str | None, prompts_text: str | None
                 ) -> tuple[dict[str, Any], str]:
        start = time.perf_counter()
        if not image_path:
            raise UserError("Send an image file as the first argument.", "No image")
        model_id = (model_id or "").strip() or self.ctx.default_model()
        self.ctx.entry(model_id)
        prompts = parse_prompts(prompts_text)
        image = load_image(image_path, max_pixels=self.ctx.config.max_image_pixels)
        prompts.validate_for_image(image.shape[:2])
        backend = self.ctx.backend(model_id)
        encoded = self.ctx.encode(model_id, image)
        prediction = backend.predict(encoded.embedding, prompts)
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
                "encode_s": round(encoded.seconds, 4),
                "encode_cached": encoded.cached,
                "decode_s": round(prediction.decode_seconds, 4),
                "total_s": round(time.perf_counter() - start, 4),
            },
        }
        return result, str(cutout)

    def _write(self, name: str, data: bytes) -> Path:
        folder = self.out_dir / uuid.uuid4().hex[:12]
        folder.mkdir(parents=True)
        path = folder / name
        path.write_bytes(data)
        old = sorted(self.out_dir.iterdir(), key=lambda p: p.stat().st_mtime)[:-KEEP_OUTPUTS]
        for stale in old:
            for file in stale.glob("*"):
                file.unlink(missing_ok=True)
            stale.rmdir()
        return path

    def models(self) -> list[dict[str, Any]]:
        """The models offered here, with presence of their weights."""
        rows = []
        for model_id in self.ctx.model_ids:
            status = self.ctx.status(model_id)
            spec = self.ctx.spec(model_id)
            rows.append({
                "model_id": model_id,
                "display_name": status.display_name,
                "family": spec.family,
                "present": status.present,
                "capabilities": spec.capabilities.as_list(),
                "download_command": status.download_command,
            })
        return rows


def build_api(ctx: AppContext) -> SegmentApi:
    """Hidden components and the named endpoints ``/segment`` and ``/models``."""
    api = SegmentApi(ctx)
    with gr.Column(visible=False):
        image = gr.File(label="image", type="filepath", file_types=["image"])
        model_id = gr.Textbox(label="model_id", value=ctx.config.default_model)
        prompts = gr.Textbox(label="prompts_json", value="{}")
        result = gr.JSON(label="result")
        cutout = gr.Image(label="cutout", type="filepath", format="png", image_mode="RGBA")
        models = gr.JSON(label="models")
        segment_btn = gr.Button("segment")
        models_btn = gr.Button("models")
    segment_btn.click(api.segment, [image, model_id, prompts], [result, cutout],
                      api_name="segment", concurrency_id="encode")
    models_btn.click(api.models, None, models, api_name="models", concurrency_limit=None)
    return api
