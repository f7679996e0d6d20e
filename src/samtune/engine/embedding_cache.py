"""Cache of image embeddings for strategies that freeze the image encoder.

With a frozen encoder and no image-space augmentation, a sample's embedding never
changes, so it is computed once and each step then costs only the decoder. Keys are
sample indices of an augmentation-free dataset. Embeddings are stored in the encoder's
output dtype on the CPU (LiteMedSAM: 256 x 64 x 64 floats = 4 MiB per sample).
"""

from __future__ import annotations

import torch
from torch import nn


class EmbeddingCache:
    def __init__(self, encoder: nn.Module):
        self.encoder = encoder
        self._store: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._store)

    @torch.no_grad()
    def get(self, indices: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Embeddings [B, C, h, w] for samples `indices` [B] whose images are `images` [B,3,S,S]."""
        keys = [int(i) for i in indices]
        missing = [n for n, key in enumerate(keys) if key not in self._store]
        if missing:
            was_training = self.encoder.training
            self.encoder.eval()
            fresh = self.encoder(images[missing])
            self.encoder.train(was_training)
            for n, embedding in zip(missing, fresh):
                self._store[keys[n]] = embedding.detach().to("cpu")
        return torch.stack([self._store[key] for key in keys]).to(images.device)
