"""`adapter`: bottleneck adapters (dim -> dim/4 -> dim, GELU), placed as in the study.

Image encoder, in each selected transformer block (SAM ViT and TinyViT alike):
  - a serial adapter with skip on the attention output: ``a = a + A(a)``;
  - a parallel adapter beside the MLP, on the MLP's input, scaled by 0.5:
    ``x = x + mlp(x_in) + 0.5 * A(x_in)``. SAM ViT's MLP input is ``norm2(x)``;
    TinyViT's MLP normalises internally, so its input is the block stream (as in the
    study's TinyViT code).
Mask decoder, in each two-way transformer block (the study's placement):
  - a serial adapter with skip on the token stream after the token-to-image cross
    attention (input of ``norm2``); the study applies the same adapter to the image
    stream after the image-to-token attention (input of ``norm4``), and so do we;
  - a parallel adapter beside the MLP (input ``norm2(queries)``), scaled by 0.5.

Initialisation: ``adapter_init="zero"`` (default) zero-initialises each adapter's output
projection, so a fresh adapter leaves the model unchanged; ``"study"`` keeps PyTorch's
default Linear initialisation, as the study's code does.

Adapters are non-linear, so they cannot be merged into the base weights: a tuned model
is saved as base + adapter weights, never exported in the official layout.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from samtune.methods.method import Method
from samtune.methods.sites import decoder_blocks, encoder_blocks, select_blocks
from samtune.methods.options import AdapterOptions
from samtune.methods.tuning import Delta, attach, deltas, first_input

HIDDEN_RATIO = 0.25
MLP_ADAPTER_SCALE = 0.5


class Adapter(Delta):
    """``fc2(GELU(fc1(x)))``: [..., dim] -> [..., dim] with a ``hidden``-wide bottleneck."""

    def __init__(
        self, target: str, dim: int, init: str, reference: Tensor, scale: float = 1.0
    ) -> None:
        super().__init__(target)
        hidden = max(1, int(dim * HIDDEN_RATIO))
        factory: dict[str, Any] = {"device": reference.device, "dtype": reference.dtype}
        self.fc1 = nn.Linear(dim, hidden, **factory)
        self.fc2 = nn.Linear(hidden, dim, **factory)
        self.scale = scale
        if init == "zero":
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))

    def after_output(self, module: nn.Module, args: Any, kwargs: Any, output: Tensor) -> Tensor:
        """Forward hook: serial adapter with skip on the module's output."""
        return output + (self.scale * self(output)).to(output.dtype)

    def before_input(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Forward pre-hook: serial adapter with skip on the module's input."""
        x = first_input(args, kwargs)
        x = x + (self.scale * self(x)).to(x.dtype)
        if args:
            return (x,) + tuple(args[1:]), kwargs
        return args, {next(iter(kwargs)): x}

    def beside(self, module: nn.Module, args: Any, kwargs: Any, output: Tensor) -> Tensor:
        """Forward hook: parallel adapter, ``output + scale * A(input)``."""
        return output + (self.scale * self(first_input(args, kwargs))).to(output.dtype)


class AdapterMethod(Method):
    name = "adapter"
    summary = "bottleneck adapters after attention and beside the MLP (study placement)"
    Options = AdapterOptions

    def apply(self, model: nn.Module, components: Sequence[str], options: AdapterOptions) -> None:
        init = options.adapter_init
        if "image_encoder" in components:
            for path, block in select_blocks(encoder_blocks(model), options.blocks):
                ref = block.attn.qkv.weight
                dim = block.attn.qkv.in_features
                serial = attach(model, path, "attn_adapter", Adapter(f"{path}.attn", dim, init, ref))
                block.attn.register_forward_hook(serial.after_output, with_kwargs=True)
                parallel = attach(
                    model, path, "mlp_adapter",
                    Adapter(f"{path}.mlp", dim, init, ref, scale=MLP_ADAPTER_SCALE),
                )
                block.mlp.register_forward_hook(parallel.beside, with_kwargs=True)
        if "mask_decoder" in components:
            for path, block in decoder_blocks(model):
                ref = block.self_attn.q_proj.weight
                dim = block.self_attn.q_proj.in_features
                serial = attach(model, path, "attn_adapter", Adapter(f"{path}.norm2", dim, init, ref))
                block.norm2.register_forward_pre_hook(serial.before_input, with_kwargs=True)
                block.norm4.register_forward_pre_hook(serial.before_input, with_kwargs=True)
                parallel = attach(
                    model, path, "mlp_adapter",
                    Adapter(f"{path}.mlp", dim, init, ref, scale=MLP_ADAPTER_SCALE),
                )
                block.mlp.register_forward_hook(parallel.beside, with_kwargs=True)
        # Injected modules train; base weights stay frozen.
        for _, module in deltas(model):
            module.requires_grad_(True)
