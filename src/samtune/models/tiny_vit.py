"""TinyViT image encoder of MobileSAM and LiteMedSAM.

The encoder maps images [B, 3, S, S] to image embeddings [B, 256, 64, 64]:

- a patch embedding of two conv+BatchNorm layers: 3x3 stride 2 for MobileSAM (S = 1024,
  256x256 grid) or 1x1 stride 1 for LiteMedSAM (S = 256, 256x256 grid);
- stage 0: inverted-residual (MBConv) blocks, then a patch merging that halves the grid;
- stages 1-3: window-attention blocks (windows 7, 14, 7) on 128x128, 64x64 and 64x64 grids
  (the last patch merging keeps 64x64: stride 1, as in MobileSAM);
- a neck of 1x1 conv, channel LayerNorm, 3x3 conv, channel LayerNorm giving 256 channels.

Fused qkv layout. Each attention module's `qkv` Linear produces, for every token,
``num_heads * (2 * key_dim + d)`` channels laid out per head: for head h the block
``[q_h (key_dim) | k_h (key_dim) | v_h (d)]`` starts at channel ``h * (2 * key_dim + d)``.
This differs from SAM ViT, whose fused qkv is ``[q (all heads) | k | v]``. Adapters that
touch only q and v (LoRA "qv") must find those channels with
`samtune.methods.sites.qkv_channels`. Each `WindowAttention` exposes `num_heads`, `key_dim` and `d` (value
channels per head).

BatchNorm. The conv stages, patch merging and the depthwise `local_conv` of every block
use BatchNorm. Fine-tuning should keep those layers in eval mode (frozen running
statistics): batches of a few medical slices give statistics unlike the pretraining ones,
and gradient checkpointing would update running statistics twice per step. In eval mode
each conv+BatchNorm pair runs as a single convolution with folded weights (same maths,
one pass over the activations, gradients still reach the BatchNorm affine parameters).

Parameter and buffer names equal those of the official checkpoints, so their state dicts
load strictly. The attention-bias index table is a non-persistent buffer, as in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from samtune.models.common import LayerNorm2d

# MobileSAM keeps TinyViT's ImageNet classifier (LayerNorm + Linear to 1000 classes) in its
# checkpoint although SAM never uses it.
_HEAD_CLASSES = 1000


def gelu(x: Tensor) -> Tensor:
    """Exact (erf) GELU; in place on `x` when autograd cannot need it.

    Call it only on a freshly computed tensor nothing else holds. On CPU, every large new
    buffer (the 256x256-grid activations are 67 MB) costs page faults on first touch,
    which makes an out-of-place GELU several times slower than the arithmetic.
    """
    if x.requires_grad and torch.is_grad_enabled():
        return F.gelu(x)
    return torch.ops.aten.gelu_(x)


class Conv2dBN(nn.Module):
    """Bias-free Conv2d `c` followed by BatchNorm2d `bn`: [B, Cin, H, W] -> [B, Cout, H', W'].

    Padding is ``kernel_size // 2``, so stride 1 keeps the spatial size.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        bn_weight_init: float = 1.0,
    ) -> None:
        super().__init__()
        self.c = nn.Conv2d(
            in_chans, out_chans, kernel_size, stride, kernel_size // 2, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_chans)
        nn.init.constant_(self.bn.weight, bn_weight_init)

    def forward(self, x: Tensor) -> Tensor:
        if self.bn.training:
            return self.bn(self.c(x))
        # Eval-mode BatchNorm is a per-channel affine map; fold it into the convolution.
        # BatchNorm2d keeps running statistics by default (track_running_stats), so they are tensors.
        running_mean, running_var = cast(Tensor, self.bn.running_mean), cast(Tensor, self.bn.running_var)
        scale = self.bn.weight * torch.rsqrt(running_var + self.bn.eps)
        weight = self.c.weight * scale[:, None, None, None]
        bias = self.bn.bias - running_mean * scale
        return F.conv2d(x, weight, bias, self.c.stride, self.c.padding, 1, self.c.groups)


class PatchEmbed(nn.Module):
    """Two conv+BN layers with a GELU between: [B, Cin, S, S] -> [B, C, S/r, S/r].

    ``kernel_size=3`` uses stride 2 twice (r = 4, MobileSAM); ``kernel_size=1`` uses
    stride 1 (r = 1, LiteMedSAM).
    """

    def __init__(self, in_chans: int, embed_dim: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size not in (1, 3):
            raise ValueError(f"patch_embed_kernel must be 1 or 3, got {kernel_size}")
        stride = 2 if kernel_size == 3 else 1
        self.seq = nn.Sequential(  # seq.1 (GELU) has no parameters; keys are seq.0 and seq.2
            Conv2dBN(in_chans, embed_dim // 2, kernel_size, stride),
            nn.GELU(),
            Conv2dBN(embed_dim // 2, embed_dim, kernel_size, stride),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.seq[2](gelu(self.seq[0](x)))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project, residual add, GELU.

    [B, C, H, W] -> [B, C, H, W]. The projection's BatchNorm starts at zero weight, so a
    freshly initialised block is GELU(identity).
    """

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = Conv2dBN(dim, hidden)
        self.conv2 = Conv2dBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = Conv2dBN(hidden, dim, bn_weight_init=0.0)

    def forward(self, x: Tensor) -> Tensor:
        y = gelu(self.conv1(x))
        y = gelu(self.conv2(y))
        y = self.conv3(y)
        y += x  # in place is autograd-safe: the conv output is not saved for backward
        return gelu(y)


class PatchMerging(nn.Module):
    """1x1 conv, GELU, 3x3 depthwise conv (stride 1 or 2), GELU, 1x1 conv.

    [B, C, H, W] -> [B, C_out, H/stride, W/stride].
    """

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = Conv2dBN(dim, out_dim)
        self.conv2 = Conv2dBN(out_dim, out_dim, 3, stride, groups=out_dim)
        self.conv3 = Conv2dBN(out_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = gelu(self.conv1(x))
        x = gelu(self.conv2(x))
        return self.conv3(x)


class Mlp(nn.Module):
    """Pre-norm MLP on the last dimension: [..., C] -> [..., C]."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(gelu(self.fc1(self.norm(x))))


class WindowAttention(nn.Module):
    """Pre-norm multi-head attention inside one window, with a learned relative-position bias.

    Input and output [Bw, N, C] with N = window_size**2 tokens in row-major order. The bias
    for a query/key pair depends on their absolute row and column offsets (dy, dx): one
    learned value per head and offset, ``attention_biases[head, dy * window_size + dx]``.

    Attributes used by adapters: `num_heads`, `key_dim` (q/k channels per head) and `d`
    (v channels per head); see the module docstring for the fused qkv layout.
    """

    attention_bias_idxs: Tensor  # buffer [N, N] of offset indices into attention_biases

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.key_dim = dim // num_heads
        self.d = self.key_dim
        self.window_size = window_size
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, num_heads * (2 * self.key_dim + self.d))
        self.proj = nn.Linear(num_heads * self.d, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window_size * window_size))
        rows, cols = torch.meshgrid(
            torch.arange(window_size), torch.arange(window_size), indexing="ij"
        )
        rows, cols = rows.flatten(), cols.flatten()
        offsets = (rows[:, None] - rows[None, :]).abs() * window_size + (
            cols[:, None] - cols[None, :]
        ).abs()
        self.register_buffer("attention_bias_idxs", offsets, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        windows, tokens, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(windows, tokens, self.num_heads, -1).transpose(1, 2)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.d], dim=-1)  # [Bw, heads, N, .]
        bias = self.attention_biases[:, self.attention_bias_idxs]  # [heads, N, N]
        # A 4-D mask lets CPU SDPA take its fused (flash) kernel instead of the math path.
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype)[None])
        return self.proj(out.transpose(1, 2).reshape(windows, tokens, self.num_heads * self.d))


class TinyViTBlock(nn.Module):
    """Window attention, depthwise 3x3 conv+BN, MLP: [B, C, H, W] -> [B, C, H, W].

    x = x + attn(x) over non-overlapping windows (the grid is zero-padded bottom/right to a
    multiple of the window; padded tokens take part in attention, as in the trained models);
    x = local_conv(x); x = x + mlp(x).
    """

    def __init__(
        self, dim: int, num_heads: int, window_size: int, mlp_ratio: float, local_conv_size: int
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.attn = WindowAttention(dim, num_heads, window_size)
        self.local_conv = Conv2dBN(dim, dim, local_conv_size, groups=dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def _window_attention(self, x: Tensor) -> Tensor:
        # x: [B, H, W, C] -> [B, H, W, C]
        batch, height, width, chans = x.shape
        ws = self.window_size
        pad_h, pad_w = -height % ws, -width % ws
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        rows, cols = (height + pad_h) // ws, (width + pad_w) // ws
        windows = x.view(batch, rows, ws, cols, ws, chans).transpose(2, 3)
        out = self.attn(windows.reshape(batch * rows * cols, ws * ws, chans))
        out = out.view(batch, rows, cols, ws, ws, chans).transpose(2, 3)
        out = out.reshape(batch, rows * ws, cols * ws, chans)
        return out[:, :height, :width] if pad_h or pad_w else out

    def forward(self, x: Tensor) -> Tensor:
        tokens = x.permute(0, 2, 3, 1)  # [B, H, W, C]; a view when x is channels_last
        tokens = tokens + self._window_attention(tokens)
        tokens = self.local_conv(tokens.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        tokens = tokens + self.mlp(tokens)
        return tokens.permute(0, 3, 1, 2)


class Stage(nn.Module):
    """A list of `blocks` then an optional `downsample`: [B, C, H, W] -> [B, C', H', W']."""

    def __init__(self, blocks: Sequence[nn.Module], downsample: nn.Module | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample
        self.grad_checkpointing = False

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x if self.downsample is None else self.downsample(x)


class TinyViT(nn.Module):
    """TinyViT-5M image encoder as used by MobileSAM and LiteMedSAM.

    forward: images [B, in_chans, S, S] (normalised) -> embeddings [B, 256, S/16, S/16] with
    ``patch_embed_kernel=3`` (MobileSAM, S = 1024) or [B, 256, S/4, S/4] with
    ``patch_embed_kernel=1`` (LiteMedSAM, S = 256); 64x64 at the native sizes. `img_size`
    is the size the weights were trained for (read by `Sam` and builders); other sizes run.

    ``with_head=True`` adds the unused ImageNet classifier (`norm_head`, `head`) present in
    MobileSAM checkpoints so they load strictly; it is frozen and never called. Keep the
    BatchNorm layers in eval mode when fine-tuning (see the module docstring).
    """

    def __init__(
        self,
        img_size: int = 1024,
        in_chans: int = 3,
        embed_dims: Sequence[int] = (64, 128, 160, 320),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (2, 4, 5, 10),
        window_sizes: Sequence[int] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        local_conv_size: int = 3,
        patch_embed_kernel: int = 3,
        with_head: bool = False,
        grad_checkpointing: bool = False,
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        if not len(embed_dims) == len(depths) == len(num_heads) == len(window_sizes) >= 2:
            raise ValueError("embed_dims, depths, num_heads and window_sizes need equal lengths >= 2")
        self.img_size = img_size
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0], patch_embed_kernel)
        self.layers = nn.ModuleList()
        last = len(depths) - 1
        for i, (dim, depth) in enumerate(zip(embed_dims, depths)):
            if i == 0:
                blocks: list[nn.Module] = [MBConv(dim, mbconv_expand_ratio) for _ in range(depth)]
            else:
                blocks = [
                    TinyViTBlock(dim, num_heads[i], window_sizes[i], mlp_ratio, local_conv_size)
                    for _ in range(depth)
                ]
            # Patch merging halves the grid, except into the last stage (MobileSAM keeps the
            # final stage at the embedding resolution).
            downsample = (
                PatchMerging(dim, embed_dims[i + 1], stride=1 if i + 1 == last else 2)
                if i < last
                else None
            )
            self.layers.append(Stage(blocks, downsample))
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )
        if with_head:
            self.norm_head = nn.LayerNorm(embed_dims[-1])
            self.head = nn.Linear(embed_dims[-1], _HEAD_CLASSES)
        self.apply(_init_weights)
        if with_head:
            # Unused in forward; frozen so optimisers and DDP never wait for their gradients.
            self.norm_head.requires_grad_(False)
            self.head.requires_grad_(False)
        self.set_grad_checkpointing(grad_checkpointing)

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block's activations in backward instead of storing them."""
        self.grad_checkpointing = enabled
        for stage in self.layers:
            cast(Stage, stage).grad_checkpointing = enabled

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != self.in_chans:
            raise ValueError(
                f"TinyViT expects images [B, {self.in_chans}, H, W], got {tuple(images.shape)}"
            )
        # channels_last keeps the [B, H, W, C] token view of every stage free of copies.
        x = self.patch_embed(images.contiguous(memory_format=torch.channels_last))
        for stage in self.layers:
            x = stage(x)
        return self.neck(x).contiguous()


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
