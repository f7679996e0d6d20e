"""`full` (the study's "vanilla" fine-tuning): every parameter of the tuned components trains."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from samtune.methods.method import Method
from samtune.methods.options import NoOptions
from samtune.methods.tuning import unfreeze


class Full(Method):
    name = "full"
    summary = "train every parameter of the chosen components"
    mergeable = True  # nothing to merge: the weights are already in the official layout

    def apply(self, model: nn.Module, components: Sequence[str], options: NoOptions) -> None:
        for component in components:
            unfreeze(getattr(model, component), model, prefix=component)
