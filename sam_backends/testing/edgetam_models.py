"""Random-weight EdgeTAM model folders, for tests and benchmarks (nothing downloaded).

``write_random_edgetam`` builds transformers' ``EdgeTamVideoModel`` under a fixed seed, saves it
with ``save_pretrained`` and writes the processor the Hub folder has (``Sam2VideoProcessor``:
image and video processors), so it travels through exactly the loaders users get:

    folder = write_random_edgetam(tmp / "edgetam", small_edgetam_config())
    backend = create_backend("edgetam", checkpoint=folder, device="cpu", precision="fp32")
    tracker = create_tracker("edgetam", checkpoint=folder, device="cpu", precision="fp32")

The small config keeps the 1024 input and SAM 2's 64 x 64 / 256 x 256 frames (so prompts,
refinement and masks work as with the real model) but narrows every layer: a RepViT with one
block per stage and 8..64 channels, a 128-wide decoder, 64-channel memory, a one-layer
perceiver (1.1 M parameters). ``backend.full_config()`` is the published architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def small_edgetam_config() -> Any:
    """An ``EdgeTamVideoConfig`` of 1.1 M parameters with the published frames."""
    from transformers import EdgeTamVideoConfig, EdgeTamVisionConfig, TimmWrapperConfig

    backbone = TimmWrapperConfig(
        architecture="repvit_m1", do_pooling=False,
        model_args={"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3],
                    "embed_dim": [8, 16, 32, 64], "depth": [1, 1, 1, 1]},
    )
    # The memory is 64 channels, as published: transformers hard-codes the memory attention's
    # key width to 64. The model width (128) must be a multiple above it: object pointers are
    # split into memory-wide tokens (with equal widths transformers' video loop fails).
    width = 128
    vision = EdgeTamVisionConfig(backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8],
                                 fpn_hidden_size=width)
    return EdgeTamVideoConfig(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=width),
        mask_decoder_config=dict(hidden_size=width, mlp_dim=64, num_attention_heads=2,
                                 iou_head_hidden_dim=32),
        memory_attention_hidden_size=width, memory_attention_num_layers=1,
        memory_attention_mlp_hidden_size=64,
        perceiver_resampler_hidden_size=64, perceiver_resampler_mlp_intermediate_size=64,
        perceiver_resampler_num_layers=1,  # 256 + 256 latents: the rope is built for 16 x 16
        memory_encoder_hidden_size=width, memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=width, memory_fuser_embed_dim=width,
        memory_fuser_intermediate_dim=64, memory_fuser_num_layers=1,
    )


def build_random_edgetam(config: Any = None, seed: int = 0) -> Any:
    """``EdgeTamVideoModel(config)`` (default: the published architecture) with seeded random
    weights."""
    import torch
    from transformers import EdgeTamVideoModel

    from ..families.edgetam.backend import full_config

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EdgeTamVideoModel(config if config is not None else full_config())
    return model.eval()


def write_random_edgetam(folder: str | Path, config: Any = None, seed: int = 0, *,
                         present: bool = True) -> Path:
    """Save a random EdgeTAM folder as the Hub lays it out (config.json, model.safetensors,
    the processors).

    ``present``: the object-score head says "object present" (a small weight, bias 4), so
    tracked masks are not blanked as "object lost" on every frame, as random weights would.
    """
    import torch
    from transformers import Sam2ImageProcessor, Sam2VideoProcessor, Sam2VideoVideoProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_random_edgetam(config, seed)
    if present:
        head = model.mask_decoder.pred_obj_score_head.proj_out
        with torch.no_grad():
            head.weight.mul_(0.01)
            head.bias.fill_(4.0)
    model.save_pretrained(str(folder))
    processor = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(),
                                   video_processor=Sam2VideoVideoProcessor())
    processor.save_pretrained(str(folder))
    return folder
