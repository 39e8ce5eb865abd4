"""Random-weight SAM 3 and OWLv2 model folders, for tests and benchmarks (nothing downloaded).

Each writer builds the real transformers model from a config under a fixed seed and saves a
folder laid out as on the Hugging Face Hub (config.json, model.safetensors, processor and
tokenizer files), so it travels through exactly the loaders users get:

    folder = write_random_sam3(tmp / "sam3", small_sam3_config())
    backend = create_backend("sam3", checkpoint=folder, device="cpu", precision="fp32")

The tokenizer is CLIP's byte-level BPE with a tiny vocabulary (the 512 byte tokens, a few
merges, the two special tokens): every text tokenizes as with the real one, only into more
pieces. Full-size configs (``Sam3VideoConfig()``, ``Owlv2Config()``) are the defaults of
transformers and give the published architectures (for benchmarks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Merged tokens of the tiny vocabulary: enough for the phrases the tests use.
_WORDS = ("dog", "cat", "car", "red", "truck", "bicycle", "person", "wheel")
SMALL_IMAGE_SIZE = 224  # SAM 3 (patch 14 -> a 16 x 16 grid); OWLv2 small: 64 (patch 16 -> 4 x 4)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    visible = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
               + list(range(ord("®"), ord("ÿ") + 1)))
    chars = visible[:]
    extra = 0
    for byte in range(256):
        if byte not in visible:
            visible.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(visible, [chr(c) for c in chars]))


def tiny_clip_tokenizer(model_max_length: int | None = None) -> Any:
    """A ``CLIPTokenizer`` with the 512 byte tokens, merges for a few words, and specials
    (``model_max_length``: the padding length, as OWLv2's tokenizer sets it to 16)."""
    from transformers import CLIPTokenizer

    units = list(_bytes_to_unicode().values())
    vocab_list = units + [u + "</w>" for u in units]
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        current = word[0]
        for i, char in enumerate(word[1:], start=1):
            piece = char + ("</w>" if i == len(word) - 1 else "")
            merges.append((current, piece))
            current += piece
            if current not in vocab_list:
                vocab_list.append(current)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_list))}
    merges = list(dict.fromkeys(merges))
    extra = {} if model_max_length is None else {"model_max_length": model_max_length}
    return CLIPTokenizer(vocab=vocab, merges=merges, **extra)


def _special_ids() -> dict[str, int]:
    tokenizer = tiny_clip_tokenizer()
    return {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id}


def small_sam3_config(image_size: int = SMALL_IMAGE_SIZE, hidden: int = 32) -> Any:
    """A ``Sam3VideoConfig`` with 2 ViT layers, 32-wide heads and one layer per DETR stage."""
    from transformers import Sam3VideoConfig

    grid = image_size // 14
    vit = dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64,
               num_hidden_layers=2, num_attention_heads=2, image_size=image_size, patch_size=14,
               window_size=grid // 2, global_attn_indexes=[1], pretrain_image_size=image_size)
    vision = dict(model_type="sam3_vision_model", backbone_config=vit, fpn_hidden_size=hidden,
                  backbone_feature_sizes=[[grid * 4] * 2, [grid * 2] * 2, [grid] * 2])
    text = dict(model_type="clip_text_model", vocab_size=len(tiny_clip_tokenizer()),
                hidden_size=32, intermediate_size=64, projection_dim=32, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=32, hidden_act="gelu",
                **_special_ids())
    stage = dict(hidden_size=hidden, num_layers=1, num_attention_heads=2, intermediate_size=64)
    detector = dict(vision_config=vision, text_config=text, geometry_encoder_config=stage,
                    detr_encoder_config=stage, detr_decoder_config=dict(stage, num_queries=12),
                    mask_decoder_config=dict(hidden_size=hidden, num_attention_heads=2))
    tracker = dict(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=hidden, image_size=image_size, patch_size=14),
        mask_decoder_config=dict(hidden_size=hidden, mlp_dim=64, num_attention_heads=2,
                                 iou_head_hidden_dim=32),
        memory_attention_hidden_size=hidden, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=hidden, memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=hidden, memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=64, memory_fuser_num_layers=1,
    )
    config = Sam3VideoConfig(detector_config=detector, tracker_config=tracker,
                             low_res_mask_size=grid * 4)
    config.image_size = image_size  # propagates to the detector and the tracker
    return config


def small_sam3_video_config(image_size: int = SMALL_IMAGE_SIZE, **video: Any) -> Any:
    """``small_sam3_config`` wide enough for the video memory, with ``video`` overriding
    ``Sam3VideoConfig`` fields (thresholds, ``hotstart_delay``, ...).

    transformers' tracker reads memory with 64 channels whatever the config says, and splits
    each object pointer into hidden/64 tokens, which needs hidden > 64: hence 128.
    """
    config = small_sam3_config(image_size, hidden=128)
    for name, value in video.items():
        if not hasattr(config, name):
            raise AttributeError(f"Sam3VideoConfig has no field {name!r}")
        setattr(config, name, value)
    return config


def build_random_sam3(config: Any = None, seed: int = 0) -> Any:
    """``Sam3VideoModel(config)`` (default: the full-size config) with seeded random weights."""
    import torch
    from transformers import Sam3VideoConfig, Sam3VideoModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Sam3VideoModel(config if config is not None else Sam3VideoConfig())
    return model.eval()


def write_random_sam3(folder: str | Path, config: Any = None, seed: int = 0, *,
                      hub_layout: bool = True, model: Any = None) -> Path:
    """Save a random SAM 3 folder. ``hub_layout``: tracker keys as ``tracker_model.*`` (the
    converted Hub checkpoint); False: as ``save_pretrained`` writes them
    (``tracker_model.tracker_model.*``)."""
    from safetensors.torch import save_file
    from transformers import Sam2VideoVideoProcessor, Sam3ImageProcessor, Sam3VideoProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model if model is not None else build_random_sam3(config, seed)
    size = int(model.config.image_size)
    if hub_layout:
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        model.config.save_pretrained(str(folder))
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        model.save_pretrained(str(folder))
    image_processor = Sam3ImageProcessor(size={"height": size, "width": size},
                                         mask_size={"height": size // 14 * 4,
                                                    "width": size // 14 * 4})
    # The Hub folder's processor serves both heads: Sam3Processor (images) and
    # Sam3VideoProcessor (its video processor resizes frames as the image processor does).
    processor = Sam3VideoProcessor(
        image_processor=image_processor,
        video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}),
        tokenizer=tiny_clip_tokenizer(),
    )
    processor.save_pretrained(str(folder))
    return folder


def small_owlv2_config(image_size: int = 64) -> Any:
    """An ``Owlv2Config`` with 2-layer, 32-wide vision and text towers (patch 16)."""
    from transformers import Owlv2Config

    text = dict(vocab_size=len(tiny_clip_tokenizer()), hidden_size=32, intermediate_size=64,
                num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=16,
                **_special_ids())
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, image_size=image_size, patch_size=16)
    return Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)


def write_random_owlv2(folder: str | Path, config: Any = None, seed: int = 0, *,
                       grid_boxes: bool = True) -> Path:
    """Save a random ``Owlv2ForObjectDetection`` folder (default: base/16's config) with an
    ``Owlv2Processor`` whose image size matches the config.

    ``grid_boxes``: zero the box head's last layer, so each patch predicts the box of its own
    grid cell (OWLv2's box prior) instead of the degenerate boxes random weights give.
    """
    import torch
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    folder = Path(folder)
    config = config if config is not None else Owlv2Config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Owlv2ForObjectDetection(config).eval()
    if grid_boxes:
        with torch.no_grad():
            model.box_head.dense2.weight.zero_()
            model.box_head.dense2.bias.zero_()
    model.save_pretrained(str(folder))
    size = int(config.vision_config.image_size)
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": size, "width": size}),
        # its ids also index the full 49,408-token vocabulary of the default config
        tokenizer=tiny_clip_tokenizer(int(config.text_config.max_position_embeddings)),
    )
    processor.save_pretrained(str(folder))
    return folder
