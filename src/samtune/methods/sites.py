"""Where methods attach in a SAM-family model, found by the official module names.

Image encoder (both families): a *transformer block* is a module with an ``attn`` that
owns a fused ``qkv`` Linear and an ``mlp``, in forward order. SAM ViT:
``image_encoder.blocks.{i}``; TinyViT: ``image_encoder.layers.{L}.blocks.{j}`` for the
attention stages L >= 1 (stage 0 is MBConv and has none). Block indices used in block
selection count these blocks globally from 0 (TinyViT 5M: 10 blocks; ViT-B: 12).

Mask decoder: the two-way transformer's blocks ``mask_decoder.transformer.layers.{i}``
and its attention modules, i.e. every module with q_proj/k_proj/v_proj/out_proj
(three per block plus ``final_attn_token_to_image``).

Fused qkv layouts (which output channels of ``attn.qkv`` are q, k and v):
  - SAM ViT: [q | k | v], each ``dim`` wide, heads contiguous inside each.
  - TinyViT: per head h, [q_h (key_dim) | k_h (key_dim) | v_h (d)], heads in order.
    The attention module exposes `num_heads`, `key_dim` and `d`.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from samtune.errors import ConfigError, UserError


def _is_linear(module: object) -> bool:
    return isinstance(module, nn.Linear)


# Blocks and attentions are found by their attribute names (the module doc), in ViT and
# TinyViT classes alike, so they are typed Any: their `attn.qkv`, `mlp`, `q_proj`... were checked here.
def encoder_blocks(model: nn.Module) -> list[tuple[str, Any]]:
    """(path from the model root, block) for every image-encoder transformer block."""
    found = []
    for name, module in model.get_submodule("image_encoder").named_modules():
        attn = getattr(module, "attn", None)
        if (
            isinstance(attn, nn.Module)
            and _is_linear(getattr(attn, "qkv", None))
            and isinstance(getattr(module, "mlp", None), nn.Module)
        ):
            found.append((f"image_encoder.{name}", module))
    if not found:
        raise UserError(
            f"{type(model.get_submodule('image_encoder')).__name__}: no transformer blocks (attn.qkv + mlp) found "
            "in the image encoder; adapters and LoRA need SAM ViT or TinyViT encoders"
        )
    return found


def decoder_blocks(model: nn.Module) -> list[tuple[str, Any]]:
    """(path, block) for every two-way transformer block of the mask decoder."""
    parts = ("self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token", "mlp")
    return [
        (f"mask_decoder.{name}", module)
        for name, module in model.get_submodule("mask_decoder").named_modules()
        if all(isinstance(getattr(module, part, None), nn.Module) for part in parts)
    ]


def decoder_attentions(model: nn.Module) -> list[tuple[str, Any]]:
    """(path, attention) for every attention module of the mask decoder, forward order."""
    return [
        (f"mask_decoder.{name}", module)
        for name, module in model.get_submodule("mask_decoder").named_modules()
        if all(_is_linear(getattr(module, p, None)) for p in ("q_proj", "k_proj", "v_proj", "out_proj"))
    ]


def qkv_channels(attn: Any, path: str = "attn") -> dict[str, Tensor]:
    """Output channels of ``attn.qkv`` holding q, k and v (long tensors, head order).

    TinyViT attention is recognised by its `key_dim` and `d` attributes (per-head
    interleaved layout); otherwise the layout must be SAM ViT's [q | k | v].
    """
    qkv: nn.Linear = attn.qkv
    out = qkv.out_features
    device = qkv.weight.device
    if hasattr(attn, "key_dim") and hasattr(attn, "d"):
        heads, key_dim, d = int(attn.num_heads), int(attn.key_dim), int(attn.d)
        per_head = 2 * key_dim + d
        if heads * per_head != out:
            raise UserError(
                f"{path}.qkv has {out} outputs, expected num_heads*(2*key_dim+d) = "
                f"{heads}*(2*{key_dim}+{d}) for the per-head TinyViT layout"
            )
        start = torch.arange(heads, device=device)[:, None] * per_head
        return {
            "q": (start + torch.arange(key_dim, device=device)).flatten(),
            "k": (start + key_dim + torch.arange(key_dim, device=device)).flatten(),
            "v": (start + 2 * key_dim + torch.arange(d, device=device)).flatten(),
        }
    if out != 3 * qkv.in_features:
        raise UserError(
            f"{path}.qkv maps {qkv.in_features} -> {out} channels; the SAM ViT [q|k|v] layout "
            f"needs 3 x {qkv.in_features}"
        )
    dim = qkv.in_features
    channels = torch.arange(out, device=device)
    return {"q": channels[:dim], "k": channels[dim : 2 * dim], "v": channels[2 * dim :]}


def select_blocks(
    blocks: list[tuple[str, Any]], selection: Sequence[int] | None
) -> list[tuple[str, Any]]:
    """The blocks at the indices in `selection` (None: all); negative indices count from the end."""
    if selection is None:
        return blocks
    chosen = []
    for index in selection:
        if not -len(blocks) <= index < len(blocks):
            raise ConfigError(
                f"options.blocks: block {index} does not exist; this image encoder has "
                f"{len(blocks)} transformer blocks (0..{len(blocks) - 1})"
            )
        chosen.append(index % len(blocks))
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"options.blocks lists a block twice: {list(selection)}")
    return [blocks[i] for i in sorted(chosen)]
