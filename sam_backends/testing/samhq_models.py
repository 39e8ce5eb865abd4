"""Random-weight SAM-HQ model folders, for tests and benchmarks (nothing downloaded).

``write_random_samhq`` builds transformers' ``SamHQModel`` from a config under a fixed seed and
saves it with ``save_pretrained``, next to a ``SamHQProcessor``, as the Hub folders are laid
out, so it travels through exactly the loader users get:

    folder = write_random_samhq(tmp / "samhq", small_samhq_config())
    backend = create_backend("samhq-vit-b", checkpoint=folder, device="cpu", precision="fp32")

The small config keeps the 1024 px input and the 64 x 64 embedding grid (so the low-res logits
are 256 x 256, as ``Prompts.mask_input`` requires) but with a 2-block, 32-wide ViT and a
32-wide decoder. ``full_samhq_config(model_id)`` gives the published ViT-B/L/H architectures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (hidden size, blocks, heads, global-attention blocks) of each catalogue model's ViT (SAM's).
VIT_SIZES = {
    "samhq-vit-b": (768, 12, 12, (2, 5, 8, 11)),
    "samhq-vit-l": (1024, 24, 16, (5, 11, 17, 23)),
    "samhq-vit-h": (1280, 32, 16, (7, 15, 23, 31)),
}


def full_samhq_config(model_id: str = "samhq-vit-b") -> Any:
    """The ``SamHQConfig`` of a catalogue model (syscv-community/sam-hq-vit-base, ...)."""
    from transformers import SamHQConfig

    hidden, depth, heads, global_attn = VIT_SIZES[model_id]
    return SamHQConfig(
        vision_config=dict(hidden_size=hidden, num_hidden_layers=depth,
                           num_attention_heads=heads, global_attn_indexes=list(global_attn)),
        mask_decoder_config=dict(vit_dim=hidden),
    )


def small_samhq_config(hidden: int = 32) -> Any:
    """A ``SamHQConfig`` with a 2-block ViT (the second global), ``hidden``-wide throughout."""
    from transformers import SamHQConfig

    return SamHQConfig(
        vision_config=dict(hidden_size=hidden, output_channels=hidden, num_hidden_layers=2,
                           num_attention_heads=2, window_size=8, global_attn_indexes=[1],
                           num_pos_feats=hidden // 2, mlp_dim=2 * hidden),
        prompt_encoder_config=dict(hidden_size=hidden, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=hidden, mlp_dim=2 * hidden, num_attention_heads=2,
                                 iou_head_hidden_dim=hidden, vit_dim=hidden),
    )


def build_random_samhq(config: Any = None, seed: int = 0) -> Any:
    """``SamHQModel(config)`` (default: ViT-B) with seeded random weights, in eval mode.

    transformers starts the relative position tables at zero and the ViT's weights near zero
    (``initializer_range`` 1e-10); every tensor is drawn here instead (matrices with a
    1/sqrt(fan-in) spread, so activations stay finite at full size), so every weight counts.
    """
    import torch
    from transformers import SamHQModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SamHQModel(config if config is not None else full_samhq_config())
        with torch.no_grad():
            for param in model.parameters():
                fan_in = param[0].numel() if param.ndim > 1 else 100
                param.copy_(torch.randn_like(param) / fan_in ** 0.5)
    return model.eval()


def write_random_samhq(folder: str | Path, config: Any = None, seed: int = 0, *,
                       model: Any = None) -> Path:
    """Save a random SAM-HQ folder (config.json, model.safetensors, preprocessor_config.json)."""
    from transformers import SamHQProcessor, SamImageProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model if model is not None else build_random_samhq(config, seed)
    model.save_pretrained(str(folder))
    size = int(model.config.vision_config.image_size)
    processor = SamHQProcessor(image_processor=SamImageProcessor(
        size={"longest_edge": size}, pad_size={"height": size, "width": size}))
    processor.save_pretrained(str(folder))
    return folder
