"""A U-Net baseline trained from scratch, shaped like a SAM-family model for the engine.

The network is MONAI's `DynUNet` (the nnU-Net architecture: two conv-norm-lrelu blocks
per level, instance norm, strided-conv downsampling, transposed-conv upsampling) with
depth, kernels, strides and filters planned from the data (`samtune.models.unet_plan`).

`UNetSegmenter` exposes the interface the engine, the objectives and the predictor use on
`Sam` (``encode``/``decode``, ``image_encoder``/``prompt_encoder``/``mask_decoder``,
``image_size``, ``normalization``): ``encode`` runs the whole U-Net and returns logits
[B, C, S, S]; ``decode`` returns them unchanged. It segments automatically only: a prompt
is refused. Its strategy is always "encoder+decoder / full": every weight trains.
"""

from __future__ import annotations

import torch
from monai.networks.nets import DynUNet
from torch import Tensor, nn

from samtune.data.intensity import Normalization
from samtune.errors import UserError
from samtune.models.unet_plan import BASE_FILTERS, plan_unet


class UNetSegmenter(nn.Module):
    """Automatic segmentation with a planned 2D U-Net.

    Args:
        unet: [B, 3, S, S] normalised padded images -> [B, C, S, S] logits.
        image_size: S.
        num_classes_out: C (background first).
        normalization: intensity convention of the inputs ("minmax": [0, 1]).
    """

    def __init__(self, unet: nn.Module, image_size: int, num_classes_out: int, normalization: Normalization = "minmax"):
        super().__init__()
        self.image_encoder = unet
        self.prompt_encoder = nn.Module()  # no prompts: kept so generic code sees the SAM layout
        self.mask_decoder = nn.Identity()
        self.image_size = image_size
        self.normalization = normalization
        self._outputs = num_classes_out

    @property
    def num_mask_outputs(self) -> int:
        return self._outputs

    def set_grad_checkpointing(self, enabled: bool = True) -> bool:
        return False

    def encode(self, images: Tensor) -> Tensor:
        """[B, 3, S, S] -> logits [B, C, S, S]; with deep supervision, in training mode,
        [B, 1 + K, C, S, S]: the output, then the K auxiliary outputs of the decoder levels
        from the finest down, each upsampled to S x S by MONAI (nearest)."""
        if images.dim() != 4 or tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"images must be [B, C, {self.image_size}, {self.image_size}]; got {tuple(images.shape)}")
        return self.image_encoder(images)

    def decode(self, embeddings: Tensor, points=None, boxes=None, mask_inputs=None,
               multimask_output: bool = True) -> tuple[Tensor, Tensor]:
        """The logits of `encode` ([B, C, S, S]) and a placeholder quality score [B, C] of ones."""
        if points is not None or boxes is not None or mask_inputs is not None:
            raise UserError("the U-Net baseline segments automatically and takes no prompts; use task.mode=automatic")
        return embeddings, torch.ones(embeddings.shape[:2], device=embeddings.device)


def build_unet(
    image_size: int = 256,
    num_multimask_outputs: int = 2,
    kernel_sizes: list[list[int]] | None = None,
    strides: list[list[int]] | None = None,
    filters: list[int] | None = None,
    base_filters: int = BASE_FILTERS,
    normalization: Normalization = "minmax",
    grad_checkpointing: bool = False,
    deep_supervision: bool = False,
) -> UNetSegmenter:
    """A DynUNet for S x S inputs with ``num_multimask_outputs`` output channels.

    Without `kernel_sizes`/`strides`/`filters`, the plan for square isotropic S x S slices
    is used (what `samtune models` shows).
    """
    if kernel_sizes is None or strides is None or filters is None:
        plan = plan_unet([(image_size, image_size)], [(1.0, 1.0)], image_size, base_filters=base_filters)
        kernel_sizes, strides, filters = plan.kernel_sizes, plan.strides, plan.filters
    heads = deep_supervision_heads(len(strides)) if deep_supervision else 1
    unet = DynUNet(
        spatial_dims=2, in_channels=3, out_channels=num_multimask_outputs,
        kernel_size=[list(k) for k in kernel_sizes], strides=[list(s) for s in strides],
        upsample_kernel_size=[list(s) for s in strides[1:]], filters=list(filters),
        norm_name=("INSTANCE", {"affine": True}), act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
        deep_supervision=deep_supervision, deep_supr_num=heads,
    )
    return UNetSegmenter(unet, image_size, num_multimask_outputs, normalization)


def deep_supervision_heads(levels: int) -> int:
    """Auxiliary outputs K for a U-Net of `levels` resolution stages, as nnU-Net uses them.

    nnU-Net supervises every decoder resolution but the coarsest one (its weight is 0): with
    the full-resolution output that is ``levels - 2`` outputs, so K = levels - 3 auxiliary
    heads (MONAI's DynUNet allows 1..levels - 2).
    """
    if levels < 4:
        raise UserError(f"model.deep_supervision: the planned U-Net has {levels} levels; deep supervision needs 4 or "
                        "more (a larger input), or set it to false")
    return levels - 3


def deep_supervision_weights(outputs: int) -> list[float]:
    """nnU-Net's loss weights of the full-resolution output and the auxiliary ones: 1/2^i,
    summing to 1 (nnU-Net's weights before it zeroes the coarsest level, which has no head here)."""
    raw = [1 / 2**i for i in range(outputs)]
    return [w / sum(raw) for w in raw]
