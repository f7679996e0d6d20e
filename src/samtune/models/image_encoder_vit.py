"""SAM's ViT image encoder: [B, 3, S, S] pixels -> [B, out_chans, S/16, S/16] embeddings.

Token maps are channels-last, [B, h, w, C], with h, w = S / patch_size; row index i
runs down the image, column index j across it. Most blocks attend inside
non-overlapping ``window_size`` x ``window_size`` windows (the map zero-padded at the
bottom/right to a multiple of the window), the blocks in ``global_attn_indexes``
attend over the whole map. Every attention adds the decomposed relative-position bias
of MViTv2/SAM: for query (i, j) and key (k, l), ``q . Rh[i - k] + q . Rw[j - l]``.

Checkpoint layout: parameter names and shapes are those of the official SAM
checkpoints *at the pretraining resolution* whatever ``img_size`` is. When the token
grid differs from the pretraining grid, ``pos_embed`` is resized bilinearly and the
global blocks' relative-position tables linearly (to ``2 * size - 1`` rows) at
forward time, so official files load strictly and still serve 256 or 512 px inputs.

Speed: attention runs in ``scaled_dot_product_attention`` and never materialises the
[heads, N, N] scores of the 4096-token global blocks (see `rel_pos_attention`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from samtune.models.common import LayerNorm2d, MLPBlock

# SDPA kernels want head dims that are multiples of 8 (CUDA alignment); cheap on CPU.
_HEAD_DIM_MULTIPLE = 8
# CPU inference path: the additive-bias buffer holds at most this many elements
# (128 MB in fp32; fewer, larger chunks measured faster), and chunks hold at least
# this many queries.
_BIAS_CHUNK_ELEMENTS = 1 << 25
_MIN_QUERY_CHUNK = 64


def resize_rel_pos(rel_pos: Tensor, length: int) -> Tensor:
    """Relative-position table [L, d] resized to [length, d] (linear, align_corners=False)."""
    if rel_pos.shape[0] == length:
        return rel_pos
    resized = F.interpolate(rel_pos.t().unsqueeze(0), size=length, mode="linear")
    return resized.squeeze(0).t()


def rel_pos_lookup(rel_pos: Tensor, size: int) -> Tensor:
    """Per-pair embeddings [size, size, d] for one axis of a ``size``-long token line.

    Entry [a, b] is the table row for offset ``a - b`` (query position a, key position
    b), i.e. row ``a - b + size - 1`` of the table resized to ``2 * size - 1`` rows.
    """
    table = resize_rel_pos(rel_pos, 2 * size - 1)
    pos = torch.arange(size, device=rel_pos.device)
    return table[pos[:, None] - pos[None, :] + (size - 1)]


def _key_position_codes(h: int, w: int, width: int, like: Tensor) -> Tensor:
    """[h*w, width] rows ``[onehot(row) (h) | onehot(col) (w) | zeros]`` for row-major keys."""
    n = h * w
    index = torch.arange(n, device=like.device)
    codes = torch.zeros(n, width, dtype=like.dtype, device=like.device)
    codes[index, index // w] = 1
    codes[index, h + index % w] = 1
    return codes


def rel_pos_attention(
    q: Tensor, k: Tensor, v: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor,
    hw: tuple[int, int], scale: float,
) -> Tensor:
    """Softmax attention with SAM's decomposed relative-position bias.

    Args:
        q, k, v: [B, heads, N, d], tokens in row-major order over an h x w grid (N = h*w).
        rel_pos_h, rel_pos_w: relative-position tables [L_h, d], [L_w, d] (resized to
            2h-1 / 2w-1 rows when needed).
        hw: the grid (h, w).
        scale: query scale of the content term (d ** -0.5); the bias is not scaled.

    Returns:
        [B, heads, N, d]: ``softmax(q.k * scale + bias) v`` with
        ``bias[n, m] = rel_rows[n, row(m)] + rel_cols[n, col(m)]``,
        ``rel_rows[n, r] = q_n . Rh[row(n) - r]`` and likewise for columns.

    Two equivalent evaluations, neither of which holds a full [B, heads, N, N] score
    tensor for large N: on CPU without autograd, SDPA over query chunks with the bias
    materialised per chunk (`_chunked_bias_attention`, the fastest CPU evaluation we
    measured); otherwise the bias folded into the dot product (`_folded_attention`),
    which keeps SDPA unmasked, so fused kernels with memory-efficient backward apply.
    """
    b, heads, n, d = q.shape
    h, w = hw
    rows = rel_pos_lookup(rel_pos_h, h).to(q.dtype)  # [h (query row), h (key row), d]
    cols = rel_pos_lookup(rel_pos_w, w).to(q.dtype)  # [w, w, d]
    grid = q.reshape(b, heads, h, w, d)
    rel_rows = torch.einsum("znhwc,hkc->znhwk", grid, rows).reshape(b, heads, n, h)
    rel_cols = torch.einsum("znhwc,wkc->znhwk", grid, cols).reshape(b, heads, n, w)
    needs_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (q, k, v, rel_rows, rel_cols)
    )
    # The chunked path writes into a buffer (out=), which ONNX export cannot express.
    if q.device.type == "cpu" and not needs_grad and not torch.onnx.is_in_onnx_export():
        return _chunked_bias_attention(q, k, v, rel_rows, rel_cols, scale)
    return _folded_attention(q, k, v, rel_rows, rel_cols, scale)


def _chunked_bias_attention(
    q: Tensor, k: Tensor, v: Tensor, rel_rows: Tensor, rel_cols: Tensor, scale: float
) -> Tensor:
    """Masked SDPA over query chunks; the additive bias is built one chunk at a time.

    rel_rows: [B, heads, N, h], rel_cols: [B, heads, N, w]. A window batch fits in one
    chunk; a 4096-token global map (batch 1, 12 heads) takes six chunks of ~680 queries.
    """
    b, heads, n, _ = q.shape
    h, w = rel_rows.shape[-1], rel_cols.shape[-1]
    step = min(n, max(_MIN_QUERY_CHUNK, _BIAS_CHUNK_ELEMENTS // (b * heads * n)))
    # One bias buffer serves every chunk: a fresh allocation per chunk costs page
    # faults that took as long as the additions themselves.
    buffer = q.new_empty(b, heads, step, h, w)
    outputs = []
    for start in range(0, n, step):
        stop = min(n, start + step)
        bias = buffer[:, :, : stop - start]
        torch.add(rel_rows[:, :, start:stop, :, None], rel_cols[:, :, start:stop, None, :], out=bias)
        outputs.append(
            F.scaled_dot_product_attention(
                q[:, :, start:stop], k, v,
                attn_mask=bias.view(b, heads, stop - start, n), scale=scale,
            )
        )
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)


def _folded_attention(
    q: Tensor, k: Tensor, v: Tensor, rel_rows: Tensor, rel_cols: Tensor, scale: float
) -> Tensor:
    """Unmasked SDPA with the bias folded into extended queries and keys.

    ``bias[n, m]`` is an inner product: append ``rel_rows[n], rel_cols[n]`` to the
    scaled query and the one-hot codes of the key's row and column to the key, then
    one SDPA call with scale 1 computes ``q.k * scale + bias`` inside its fused kernel.
    Values are zero-padded to the same width (fused CPU kernels need equal head dims,
    CUDA ones a multiple of 8); the padding columns of the output are dropped.
    """
    b, heads, n, d = q.shape
    h, w = rel_rows.shape[-1], rel_cols.shape[-1]
    width = -(-(d + h + w) // _HEAD_DIM_MULTIPLE) * _HEAD_DIM_MULTIPLE
    parts = [q * scale, rel_rows, rel_cols]
    if width > d + h + w:
        parts.append(q.new_zeros(b, heads, n, width - d - h - w))
    q_ext = torch.cat(parts, dim=-1)
    codes = _key_position_codes(h, w, width - d, k)
    k_ext = torch.cat([k, codes.expand(b, heads, n, width - d)], dim=-1)
    v_ext = F.pad(v, (0, width - d))
    out = F.scaled_dot_product_attention(q_ext, k_ext, v_ext, scale=1.0)
    return out[..., :d]


def window_partition(x: Tensor, window_size: int) -> tuple[Tensor, tuple[int, int]]:
    """[B, H, W, C] -> ([B * nH * nW, ws, ws, C] windows, (Hp, Wp) padded size).

    The map is zero-padded at the bottom/right to multiples of ``window_size``;
    windows are ordered row-major over the window grid, batch outermost.
    """
    b, h, w, c = x.shape
    pad_h, pad_w = -h % window_size, -w % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window_size, window_size, wp // window_size, window_size, c)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)
    return windows, (hp, wp)


def window_unpartition(
    windows: Tensor, window_size: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> Tensor:
    """Inverse of `window_partition`: windows -> [B, H, W, C] with the padding cropped."""
    hp, wp = padded_hw
    h, w = hw
    nh, nw = hp // window_size, wp // window_size
    b = windows.shape[0] // (nh * nw)
    x = windows.view(b, nh, nw, window_size, window_size, -1).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :].contiguous()
    return x


class Attention(nn.Module):
    """Multi-head self-attention over a token grid: [B, h, w, C] -> [B, h, w, C].

    ``qkv`` is one fused Linear whose output channels are laid out [q | k | v], each
    C wide with heads contiguous. ``rel_pos_h`` / ``rel_pos_w`` are [2*rel_pos_size-1,
    head_dim] tables, resized at forward time when the grid differs from rel_pos_size.
    """

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool = True,
        use_rel_pos: bool = True, rel_pos_size: int | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            if rel_pos_size is None:
                raise ValueError("rel_pos_size is required when use_rel_pos is True")
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, self.head_dim))

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, N, head_dim]
        if self.use_rel_pos:
            out = rel_pos_attention(q, k, v, self.rel_pos_h, self.rel_pos_w, (h, w), self.scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, h, w, c))


class Block(nn.Module):
    """Pre-norm transformer block on [B, h, w, C]; windowed when window_size > 0."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
        use_rel_pos: bool = True, window_size: int = 0, global_rel_pos_size: int | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(
            dim, num_heads, qkv_bias=qkv_bias, use_rel_pos=use_rel_pos,
            rel_pos_size=window_size if window_size > 0 else global_rel_pos_size,
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio), act=nn.GELU)
        self.window_size = window_size

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            hw = (x.shape[1], x.shape[2])
            windows, padded_hw = window_partition(x, self.window_size)
            x = window_unpartition(self.attn(windows), self.window_size, padded_hw, hw)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection: [B, in_chans, H, W] -> [B, H/p, W/p, embed_dim]."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class ImageEncoderViT(nn.Module):
    """SAM ViT encoder: [B, in_chans, S, S] -> [B, out_chans, S/p, S/p].

    Args:
        img_size: side S of the (square, padded) input this model is built for.
        patch_size: patch side p in pixels.
        pretrain_img_size: resolution the weights come from; fixes the shapes of
            ``pos_embed`` [1, P, P, C] and the global blocks' relative-position tables
            [2P-1, head_dim], with P = pretrain_img_size / p.
        window_size: window side (tokens) of the non-global blocks.
        global_attn_indexes: indices of the blocks that attend over the whole map.
        grad_checkpointing: recompute each block in backward (training only).
    """

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        qkv_bias: bool = True,
        use_rel_pos: bool = True,
        window_size: int = 14,
        global_attn_indexes: Sequence[int] = (2, 5, 8, 11),
        pretrain_img_size: int = 1024,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        for name, size in (("img_size", img_size), ("pretrain_img_size", pretrain_img_size)):
            if size % patch_size:
                raise ValueError(f"{name}={size} is not a multiple of patch_size={patch_size}")
        self.img_size = img_size
        self.patch_size = patch_size
        self.pretrain_img_size = pretrain_img_size
        self.global_attn_indexes = tuple(global_attn_indexes)
        self.grad_checkpointing = grad_checkpointing
        pretrain_grid = pretrain_img_size // patch_size

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, pretrain_grid, pretrain_grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                use_rel_pos=use_rel_pos,
                window_size=0 if i in self.global_attn_indexes else window_size,
                global_rel_pos_size=pretrain_grid,
            )
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    @property
    def embedding_size(self) -> int:
        """Side of the output embedding for ``img_size`` inputs (img_size / patch_size)."""
        return self.img_size // self.patch_size

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute block activations in backward instead of storing them (training)."""
        self.grad_checkpointing = bool(enabled)

    def abs_pos_embed(self, h: int, w: int) -> Tensor:
        """Absolute position embedding [1, h, w, C], resized bilinearly from the stored grid."""
        pos = self.pos_embed
        if pos.shape[1:3] == (h, w):
            return pos
        resized = F.interpolate(
            pos.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False
        )
        return resized.permute(0, 2, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        """[B, in_chans, H, W] normalised pixels -> [B, out_chans, H/p, W/p]."""
        if x.shape[-1] % self.patch_size or x.shape[-2] % self.patch_size:
            raise ValueError(
                f"input of {tuple(x.shape[-2:])} px is not a multiple of the "
                f"{self.patch_size} px patch; resize and pad to {self.img_size} first"
            )
        x = self.patch_embed(x)
        x = x + self.abs_pos_embed(x.shape[1], x.shape[2])
        use_checkpoint = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if use_checkpoint:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))
