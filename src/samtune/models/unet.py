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

    def __init__(self, unet: nn.Module, image_size: int, num_classes_out: int, normalization: str = "minmax"):
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
        """[B, 3, S, S] -> logits [B, C, S, S]."""
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
    normalization: str = "minmax",
    grad_checkpointing: bool = False,
) -> UNetSegmenter:
    """A DynUNet for S x S inputs with ``num_multimask_outputs`` output channels.

    Without `kernel_sizes`/`strides`/`filters`, the plan for square isotropic S x S slices
    is used (what `samtune models` shows).
    """
    if kernel_sizes is None or strides is None or filters is None:
        plan = plan_unet([(image_size, image_size)], [(1.0, 1.0)], image_size, base_filters=base_filters)
        kernel_sizes, strides, filters = plan.kernel_sizes, plan.strides, plan.filters
    unet = DynUNet(
        spatial_dims=2, in_channels=3, out_channels=num_multimask_outputs,
        kernel_size=[list(k) for k in kernel_sizes], strides=[list(s) for s in strides],
        upsample_kernel_size=[list(s) for s in strides[1:]], filters=list(filters),
        norm_name=("INSTANCE", {"affine": True}), act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
        deep_supervision=False,
    )
    return UNetSegmenter(unet, image_size, num_multimask_outputs, normalization)
