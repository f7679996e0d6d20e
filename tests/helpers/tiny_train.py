"""A tiny training configuration: `tiny_vit_test`, LoRA on encoder and decoder, 6 steps."""

from __future__ import annotations

from samtune.engine.config import TrainConfig


def tiny_config(data, **changes) -> TrainConfig:
    """`data`: {"train": path, "val": path}; `changes`: section__key=value overrides."""
    config = TrainConfig()
    config.model.name = "tiny_vit_test"
    config.strategy.component, config.strategy.method = "encoder+decoder", "lora"
    config.data.train, config.data.val = str(data["train"]), str(data["val"])
    config.optim.steps, config.optim.lr, config.optim.warmup_steps = 6, 3e-3, 1
    config.eval.every, config.run.checkpoint_every, config.run.log_every = 3, 2, 1
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        setattr(getattr(config, section), key, value)
    return config
