"""`Sam`: an image encoder, a prompt encoder and a mask decoder composed.

Sam works on model-ready tensors: images already normalised (``normalization``
names the convention the weights expect), resized so the longest side is
``image_size`` and padded bottom/right to [B, 3, image_size, image_size]; the data
layer does that. Prompts are in that padded input frame, masks come out at the
decoder's low resolution (4x the embedding, 256 x 256 for 1024 px inputs) in the
same frame, as logits.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, cast

from torch import Tensor, nn

from samtune.models.mask_decoder import MaskDecoder
from samtune.models.prompt_encoder import PromptEncoder

if TYPE_CHECKING:
    from samtune.data.intensity import Normalization

NORMALIZATIONS = ("imagenet", "minmax")


class Sam(nn.Module):
    """Segment Anything: ``forward = decode(encode(images), prompts)``.

    Args:
        image_encoder: [B, 3, S, S] -> [B, C, S/16, S/16] (ViT, TinyViT, ...).
        prompt_encoder: `PromptEncoder` whose input_image_size is (S, S).
        mask_decoder: `MaskDecoder`.
        image_size: S, the side of the square padded input.
        normalization: "imagenet" (mean/std on 0..255 pixels, SAM / MobileSAM) or
            "minmax" (rescaled to [0, 1], MedSAM / LiteMedSAM).
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        *,
        image_size: int,
        normalization: str,
    ) -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        if tuple(prompt_encoder.input_image_size) != (image_size, image_size):
            raise ValueError(
                f"prompt encoder expects {prompt_encoder.input_image_size} inputs but "
                f"image_size is {image_size}"
            )
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.image_size = image_size
        self.normalization = cast("Normalization", normalization)  # checked above

    @property
    def num_mask_outputs(self) -> int:
        """Masks per sample with ``multimask_output=True`` (3 for SAM, or the class count)."""
        return self.mask_decoder.num_multimask_outputs

    def set_grad_checkpointing(self, enabled: bool = True) -> bool:
        """Turn activation checkpointing of the image encoder on/off.

        Returns whether the encoder supports it; enabling it on an encoder that does
        not warns and changes nothing.
        """
        setter = getattr(self.image_encoder, "set_grad_checkpointing", None)
        if setter is None:
            if enabled:
                warnings.warn(
                    f"{type(self.image_encoder).__name__} has no gradient checkpointing; "
                    "training will store all activations",
                    stacklevel=2,
                )
            return False
        setter(enabled)
        return True

    def encode(self, images: Tensor) -> Tensor:
        """[B, 3, S, S] normalised, padded images -> [B, C, h, w] image embeddings."""
        if images.dim() != 4 or tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"images must be [B, C, {self.image_size}, {self.image_size}] (resized and "
                f"padded); got {tuple(images.shape)}"
            )
        return self.image_encoder(images)

    def decode(
        self,
        embeddings: Tensor,
        points: tuple[Tensor, Tensor] | None = None,
        boxes: Tensor | None = None,
        mask_inputs: Tensor | None = None,
        multimask_output: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Predict masks from image embeddings and prompts.

        Args:
            embeddings: [B, C, h, w] (one per sample) or [1, C, h, w] shared by B prompts.
            points: (coords [B, N, 2] (x, y) input-frame pixels, labels [B, N]; 1
                foreground, 0 background, -1 padding) or None.
            boxes: [B, 4] (x0, y0, x1, y1) input-frame pixels, or None.
            mask_inputs: [B, 1, 4h, 4w] mask logits from a previous pass, or None.
            multimask_output: return the `num_mask_outputs` multi-mask outputs instead
                of the single-mask output. With no prompt at all (automatic mode) the
                batch size is that of ``embeddings``.

        Returns:
            low_res_logits: [B, M, 4h, 4w] with M = num_mask_outputs or 1.
            iou_predictions: [B, M].
        """
        no_prompt = points is None and boxes is None and mask_inputs is None
        sparse, dense = self.prompt_encoder(
            points=points,
            boxes=boxes,
            masks=mask_inputs,
            batch_size=embeddings.shape[0] if no_prompt else None,
        )
        return self.mask_decoder(
            image_embeddings=embeddings,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
        )

    def forward(
        self,
        images: Tensor,
        points: tuple[Tensor, Tensor] | None = None,
        boxes: Tensor | None = None,
        mask_inputs: Tensor | None = None,
        multimask_output: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """``decode(encode(images), ...)``: [B, 3, S, S] -> ([B, M, S/4, S/4], [B, M])."""
        return self.decode(
            self.encode(images), points, boxes, mask_inputs, multimask_output=multimask_output
        )
