"""`SegmentationModel`: what prediction asks of a model, as a type.

`Sam`, `UNetSegmenter` and the inference backends' `OnnxSam` / `Bf16Sam` all have these
members without sharing a base class (the backends are not torch modules), so the
type is a structural Protocol: anything with them fits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from torch import Tensor

if TYPE_CHECKING:
    from samtune.data.intensity import Normalization


class SegmentationModel(Protocol):
    """Model-frame images in, low-resolution mask logits out (see `Sam.encode` / `Sam.decode`)."""

    @property
    def image_size(self) -> int:
        """S: inputs are [B, 3, S, S], resized and padded."""
        ...

    @property
    def normalization(self) -> Normalization:
        """The intensity convention of the inputs."""
        ...

    @property
    def num_mask_outputs(self) -> int:
        """Masks per sample with ``multimask_output=True``."""
        ...

    def encode(self, images: Tensor) -> Tensor:
        """[B, 3, S, S] -> image embeddings (or, for a U-Net, the logits)."""
        ...

    def decode(
        self,
        embeddings: Tensor,
        points: tuple[Tensor, Tensor] | None = None,
        boxes: Tensor | None = None,
        mask_inputs: Tensor | None = None,
        multimask_output: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """(mask logits [B, T, 4h, 4w], quality scores [B, T])."""
        ...
