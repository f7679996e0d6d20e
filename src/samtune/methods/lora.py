"""`lora` and `dora`: low-rank updates of the query and value projections.

Targets: every selected image-encoder block's fused ``attn.qkv`` and every mask-decoder
attention's ``q_proj`` and ``v_proj`` (including ``final_attn_token_to_image``). On the
fused qkv only the q and v output channels are updated, with one (A, B) pair each, and
the channels follow each backbone's layout (see `samtune.methods.sites.qkv_channels`):
SAM ViT [q | k | v]; TinyViT interleaved per head. k channels are never touched.

LoRA (Hu et al. 2021): ``y[..., c] += (alpha / r) * B A x`` for the branch's channels
c, A [r, in] Kaiming-uniform, B [len(c), r] zero-initialised, so a fresh branch is the
identity. Dropout, when set, applies to the branch input only.

DoRA (Liu et al. 2024): the updated rows are renormalised to a learned magnitude m,
``W'[c] = m * (W[c] + dW) / ||W[c] + dW||`` (row norms), m initialised to ||W[c]|| so a
fresh branch is the identity. As in the paper (sec. 4.3) the norm is treated as a
constant in backward. With dropout the base term is recomputed on the dropped input,
as peft does.

Both merge into the base weight (`fold`) and unmerge (`unfold`).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samtune.methods.method import Method
from samtune.methods.sites import decoder_attentions, encoder_blocks, qkv_channels, select_blocks
from samtune.methods.options import LoraOptions
from samtune.methods.tuning import Delta, attach, deltas, first_input


class LoraBranch(Delta):
    """Low-rank update of output `channels` (None: all) of the Linear at `target`."""

    mergeable = True
    channels: Tensor | None  # buffer: the target's output rows this branch updates (None: all)

    def __init__(
        self, target: str, linear: nn.Linear, channels: Tensor | None, rank: int, alpha: float, dropout: float
    ) -> None:
        super().__init__(target)
        factory: dict[str, Any] = {"device": linear.weight.device, "dtype": linear.weight.dtype}
        out = linear.out_features if channels is None else channels.numel()
        self.lora_A = nn.Parameter(torch.empty(rank, linear.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(out, rank, **factory))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / rank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.register_buffer("channels", channels, persistent=False)

    def extra_repr(self) -> str:
        return f"target={self.target}, rank={self.lora_A.shape[0]}, scaling={self.scaling:g}"

    def delta_weight(self) -> Tensor:
        """[len(channels), in]: the update of the branch's rows of the target weight."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def _rows(self, weight: Tensor) -> Tensor:
        return weight if self.channels is None else weight.index_select(0, self.channels)

    def _put(self, weight: Tensor, rows: Tensor) -> Tensor:
        return rows if self.channels is None else weight.index_copy(0, self.channels, rows)

    def _add(self, output: Tensor, increment: Tensor) -> Tensor:
        increment = increment.to(output.dtype)
        if self.channels is None:
            return output + increment
        return output.index_add(-1, self.channels, increment)

    def _low_rank(self, x: Tensor) -> Tensor:
        return F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling

    def hook(self, module: nn.Linear, args: Any, kwargs: Any, output: Tensor) -> Tensor | None:
        if self.merged:
            return None
        return self._add(output, self._low_rank(self.dropout(first_input(args, kwargs))))

    def fold(self, weight: Tensor) -> Tensor:
        return self._put(weight, self._rows(weight) + self.delta_weight().to(weight.dtype))

    def unfold(self, weight: Tensor) -> Tensor:
        return self._put(weight, self._rows(weight) - self.delta_weight().to(weight.dtype))


class DoraBranch(LoraBranch):
    """LoRA with weight-decomposed magnitude on the branch's rows (see module docstring)."""

    merged_norm: Tensor | None  # buffer: the row norms `fold` divided by (None before a fold)

    def __init__(self, target: str, linear: nn.Linear, channels: Tensor | None, **kwargs: Any) -> None:
        super().__init__(target, linear, channels, **kwargs)
        rows = self._rows(linear.weight.detach())
        self.magnitude = nn.Parameter(self._norm(rows).to(rows.dtype))
        self.register_buffer("merged_norm", None, persistent=False)

    def _norm(self, rows: Tensor) -> Tensor:
        """Row norms of ``rows + dW`` in float32, outside autocast, detached."""
        device = rows.device.type
        with contextlib.nullcontext() if device == "meta" else torch.autocast(device, enabled=False):
            updated = rows.detach().float() + self.delta_weight().detach().float()
            return updated.norm(dim=1)

    def hook(self, module: nn.Linear, args: Any, kwargs: Any, output: Tensor) -> Tensor | None:
        if self.merged:
            return None
        x = self.dropout(first_input(args, kwargs))
        rows = self._rows(module.weight)
        scale = self.magnitude / self._norm(rows)  # [len(channels)]
        if isinstance(self.dropout, nn.Identity) or not self.training:
            base = output if self.channels is None else output.index_select(-1, self.channels)
            if module.bias is not None:
                base = base - self._rows(module.bias)
        else:
            base = F.linear(x, rows)
        # scale * (W x + dW x) + b, written as an increment of y = W x + b.
        return self._add(output, (scale - 1) * base + scale * self._low_rank(x))

    def fold(self, weight: Tensor) -> Tensor:
        rows = self._rows(weight)
        norm = self._norm(rows)
        self.merged_norm = norm
        scale = (self.magnitude.float() / norm)[:, None]
        merged = scale * (rows.float() + self.delta_weight().float())
        return self._put(weight, merged.to(weight.dtype))

    def unfold(self, weight: Tensor) -> Tensor:
        if self.merged_norm is None:
            raise RuntimeError(f"{self.target}: unfold() without a previous fold()")
        scale = (self.magnitude.float() / self.merged_norm)[:, None]
        rows = self._rows(weight).float() / scale - self.delta_weight().float()
        return self._put(weight, rows.to(weight.dtype))


class Lora(Method):
    name = "lora"
    summary = "low-rank updates of the q and v projections (layout-aware on fused qkv)"
    Options = LoraOptions
    mergeable = True
    branch: type[LoraBranch] = LoraBranch

    def apply(self, model: nn.Module, components: Sequence[str], options: LoraOptions) -> None:
        settings: dict[str, Any] = {
            "rank": options.rank,
            "alpha": float(options.alpha if options.alpha is not None else options.rank),
            "dropout": options.dropout,
        }

        def add(path: str, part: str, linear: nn.Linear, target: str, channels: Tensor | None) -> None:
            branch = attach(model, path, part, self.branch(target, linear, channels, **settings))
            linear.register_forward_hook(branch.hook, with_kwargs=True)

        if "image_encoder" in components:
            for path, block in select_blocks(encoder_blocks(model), options.blocks):
                channels = qkv_channels(block.attn, f"{path}.attn")
                for part in ("q", "v"):
                    add(f"{path}.attn", part, block.attn.qkv, f"{path}.attn.qkv", channels[part])
        if "mask_decoder" in components:
            for path, attn in decoder_attentions(model):
                add(path, "q", attn.q_proj, f"{path}.q_proj", None)
                add(path, "v", attn.v_proj, f"{path}.v_proj", None)
        for _, branch in deltas(model):
            branch.requires_grad_(True)


class Dora(Lora):
    name = "dora"
    summary = "LoRA with a learned per-row magnitude (weight-decomposed, Liu et al. 2024)"
    branch = DoraBranch
