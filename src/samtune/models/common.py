"""Small building blocks shared by the SAM components.

Parameter names follow the official SAM checkpoints (``lin1``/``lin2`` for the
transformer MLPs, ``layers.{i}`` for the decoder heads, ``weight``/``bias`` for the
channel LayerNorm) so official state dicts load without remapping.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a channels-first map: [B, C, H, W] -> [B, C, H, W].

    Each spatial position is normalised across its C channels (biased variance, as
    ``nn.LayerNorm``), then scaled and shifted per channel.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps
        self.num_channels = num_channels  # a Python int: ONNX tracing keeps it constant

    def forward(self, x: Tensor) -> Tensor:
        # F.layer_norm normalises trailing dims: move channels last and back. The result
        # is made contiguous so callers get an ordinary NCHW tensor (views keep working).
        y = F.layer_norm(x.permute(0, 2, 3, 1), (self.num_channels,), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2).contiguous()


class MLPBlock(nn.Module):
    """Transformer feed-forward block ``lin2(act(lin1(x)))``: [..., D] -> [..., D]."""

    def __init__(self, embedding_dim: int, mlp_dim: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.act(self.lin1(x)))


class MLP(nn.Module):
    """Stack of ``num_layers`` Linear layers with ReLU between them: [..., in] -> [..., out].

    Hidden layers are ``hidden_dim`` wide; the last layer has no activation unless
    ``sigmoid_output`` is set. Used for the mask decoder's hypernetworks and IoU head.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MLP needs at least one layer, got num_layers={num_layers}")
        widths = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(
            nn.Linear(n_in, n_out) for n_in, n_out in zip(widths[:-1], widths[1:])
        )
        self.sigmoid_output = sigmoid_output

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return torch.sigmoid(x) if self.sigmoid_output else x
