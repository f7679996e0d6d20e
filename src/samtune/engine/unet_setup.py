"""What training the U-Net baseline needs beyond a SAM strategy: checks and the plan.

The U-Net (`samtune.models.unet`) trains every weight from scratch in automatic mode;
its depth, kernels, strides and filters are planned from the training slices
(`samtune.models.unet_plan`) and its input side S from their median shape, unless
``model.image_size`` fixes S. The plan goes into the run's model overrides (run.json), so
`Predictor.from_run` rebuilds the same network.
"""

from __future__ import annotations

from typing import Any

from samtune.errors import ConfigError
from samtune.models.registry import ModelSpec
from samtune.models.unet_plan import BASE_FILTERS, plan_from_dataset


def check_unet_config(mode: str, method: str, checkpoint: str | None, cache_embeddings: str = "auto") -> None:
    """One-line ConfigErrors for settings that mean nothing for a U-Net from scratch."""
    if mode != "automatic":
        raise ConfigError(
            f"task.mode={mode} with model.name=unet: the U-Net baseline segments automatically only "
            "(it takes no prompts); set task.mode=automatic or choose a SAM-family model"
        )
    if method != "full":
        raise ConfigError(
            f"strategy.method={method} with model.name=unet: the U-Net trains every weight from scratch; "
            "set strategy.method=full"
        )
    if checkpoint:
        raise ConfigError(f"model.checkpoint={checkpoint} with model.name=unet: the U-Net has no pretrained "
                          "weights; remove model.checkpoint")
    if cache_embeddings == "memory":
        raise ConfigError("run.cache_embeddings=memory with model.name=unet: the U-Net has no frozen encoder; "
                          "set run.cache_embeddings=auto or off")


def plan_for_training(data: Any, spec: ModelSpec, image_size: int | None) -> dict[str, Any]:
    """Builder overrides planned from `data.train` (a TrainingData); sets the datasets' frame side.

    The datasets were built with a provisional frame side; their slices are only resized when
    read, so setting the planned side now changes every sample they produce.
    """
    from dataclasses import replace

    plan = plan_from_dataset(data.train, image_size, base_filters=spec.kwargs.get("base_filters", BASE_FILTERS))
    for dataset in (data.train, data.val):
        if dataset is not None:
            dataset.config = replace(dataset.config, image_size=plan.image_size)
    return plan.overrides()
