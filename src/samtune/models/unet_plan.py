"""Plan a 2D U-Net from the data, the way nnU-Net v2 plans its ``2d`` configuration.

The facts followed (nnU-Net v2, Isensee et al. 2021, its ExperimentPlanner):

- the network sees the median slice shape; here that is samtune's square model frame of
  side S (slices are resized so their longest side is S, then padded), with S the median
  longest side unless the user fixes ``model.image_size``, capped at ``max_size``;
- an axis is downsampled (stride 2) while its feature map stays at least
  ``2 * min_edge`` pixels (min_edge = 4) and its current spacing is less than twice the
  finest current spacing: a coarse (anisotropic) axis waits until the fine axis has been
  pooled to a similar spacing;
- a convolution is 3 wide along an axis once that axis' spacing is within 2x of the
  finest one, else 1 (no mixing across far-apart pixels), and stays 3 from then on;
  the bottleneck always gets 3x3;
- if only one axis can still be pooled, it is pooled only while it is at least
  ``3 * min_edge`` pixels long;
- features start at 32 and double per level, capped at 512 in 2D;
- the input side must be divisible by the product of the strides along each axis (S is
  rounded up).

Spacings here are (rows, cols) in mm; only their ratio matters (resizing to the frame
scales both by the same factor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import median
from typing import Sequence

BASE_FILTERS = 32
MAX_FILTERS_2D = 512
MIN_EDGE = 4  # smallest feature map edge (pixels) at the bottleneck
MAX_SIZE = 512  # largest planned frame: CPU/GPU memory of one 2D patch


@dataclass(frozen=True)
class UNetPlan:
    """A planned 2D U-Net (what `samtune.models.unet.build_unet` takes).

    image_size: side S of the square input frame (pixels).
    kernel_sizes: per level (rows, cols) convolution kernel, encoder top to bottleneck.
    strides: per level (rows, cols) stride; the first level is (1, 1).
    filters: feature channels per level.
    """

    image_size: int
    kernel_sizes: list[list[int]] = field(default_factory=list)
    strides: list[list[int]] = field(default_factory=list)
    filters: list[int] = field(default_factory=list)

    @property
    def depth(self) -> int:
        """Number of resolution levels (downsamplings + 1)."""
        return len(self.strides)

    def overrides(self) -> dict:
        """Builder arguments, JSON-ready (saved in run.json to rebuild the model)."""
        return {"image_size": self.image_size, "kernel_sizes": self.kernel_sizes,
                "strides": self.strides, "filters": self.filters}


def pool_and_kernels(
    size: Sequence[int], spacing: Sequence[float], min_edge: int = MIN_EDGE
) -> tuple[list[list[int]], list[list[int]]]:
    """(strides, kernel_sizes) per level for a patch of `size` pixels at `spacing` mm."""
    dims = len(size)
    current_size = [float(s) for s in size]
    current_spacing = [float(s) for s in spacing]
    strides: list[list[int]] = [[1] * dims]
    kernels: list[list[int]] = []
    kernel = [1] * dims
    while True:
        poolable = [d for d in range(dims) if current_size[d] >= 2 * min_edge]
        if not poolable:
            break
        finest = min(current_spacing[d] for d in poolable)
        poolable = [d for d in poolable if current_spacing[d] / finest < 2]
        if len(poolable) == 1 and current_size[poolable[0]] < 3 * min_edge:
            break
        finest_all = min(current_spacing)
        for d in range(dims):
            if kernel[d] != 3 and current_spacing[d] / finest_all < 2:
                kernel[d] = 3
        kernels.append(list(kernel))
        stride = [1] * dims
        for d in poolable:
            stride[d] = 2
            current_spacing[d] *= 2
            current_size[d] = math.ceil(current_size[d] / 2)
        strides.append(stride)
    kernels.append([3] * dims)  # bottleneck
    return strides, kernels


def plan_unet(
    slice_shapes: Sequence[Sequence[int]],
    pixel_spacings: Sequence[Sequence[float]],
    image_size: int | None = None,
    base_filters: int = BASE_FILTERS,
    max_filters: int = MAX_FILTERS_2D,
    max_size: int = MAX_SIZE,
) -> UNetPlan:
    """Plan from the training slices' (rows, cols) shapes and spacings (one per slice)."""
    if not slice_shapes:
        raise ValueError("no slices to plan a U-Net from")
    spacing = [median(s[d] for s in pixel_spacings) for d in range(2)]
    side = image_size or min(int(median(max(s) for s in slice_shapes)), max_size)
    strides, kernels = pool_and_kernels((side, side), spacing)
    divisor = max(math.prod(s[d] for s in strides) for d in range(2))
    side = int(math.ceil(side / divisor) * divisor)
    filters = [min(base_filters * 2**level, max_filters) for level in range(len(strides))]
    return UNetPlan(side, kernels, strides, filters)


def plan_from_dataset(dataset, image_size: int | None = None, base_filters: int = BASE_FILTERS) -> UNetPlan:
    """Plan from a `samtune.data.SliceDataset`'s slice references (shapes and spacings)."""
    refs = dataset.refs
    return plan_unet([r.slice_shape for r in refs], [r.pixel_spacing for r in refs], image_size,
                     base_filters=base_filters)
