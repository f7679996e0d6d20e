"""`samtune train --strategy BACKBONE/COMPONENT/METHOD`: the study's recipes generated from
the strategy grid give exactly the configuration the 18 hand-kept recipe files under
recipes/study/ gave (their values captured below before the files were deleted)."""

from __future__ import annotations

import pytest

from samtune.configs import apply_overrides, from_dict, load_config, to_dict
from samtune.engine.config import TrainConfig
from samtune.engine.recipes import resolve_recipe, strategy_recipe
from samtune.errors import ConfigError, UserError

# (file stem, model.name, strategy.component, strategy.method, optim.lr) of each deleted file
OLD_FILES = [
    ("mobile_sam_decoder_adapter", "mobile_sam", "decoder", "adapter", 0.0003),
    ("mobile_sam_decoder_full", "mobile_sam", "decoder", "full", 0.0001),
    ("mobile_sam_decoder_lora", "mobile_sam", "decoder", "lora", 0.0003),
    ("mobile_sam_encoder_decoder_adapter", "mobile_sam", "encoder+decoder", "adapter", 0.0003),
    ("mobile_sam_encoder_decoder_full", "mobile_sam", "encoder+decoder", "full", 0.0001),
    ("mobile_sam_encoder_decoder_lora", "mobile_sam", "encoder+decoder", "lora", 0.0003),
    ("sam_vit_b_decoder_adapter", "sam_vit_b", "decoder", "adapter", 0.0003),
    ("sam_vit_b_decoder_full", "sam_vit_b", "decoder", "full", 0.0001),
    ("sam_vit_b_decoder_lora", "sam_vit_b", "decoder", "lora", 0.0003),
    ("sam_vit_b_encoder_decoder_adapter", "sam_vit_b", "encoder+decoder", "adapter", 0.0003),
    ("sam_vit_b_encoder_decoder_full", "sam_vit_b", "encoder+decoder", "full", 0.0001),
    ("sam_vit_b_encoder_decoder_lora", "sam_vit_b", "encoder+decoder", "lora", 0.0003),
    ("sam_vit_h_decoder_adapter", "sam_vit_h", "decoder", "adapter", 0.0003),
    ("sam_vit_h_decoder_full", "sam_vit_h", "decoder", "full", 0.0001),
    ("sam_vit_h_decoder_lora", "sam_vit_h", "decoder", "lora", 0.0003),
    ("sam_vit_h_encoder_decoder_adapter", "sam_vit_h", "encoder+decoder", "adapter", 0.0003),
    ("sam_vit_h_encoder_decoder_full", "sam_vit_h", "encoder+decoder", "full", 0.0001),
    ("sam_vit_h_encoder_decoder_lora", "sam_vit_h", "encoder+decoder", "lora", 0.0003),
]
# What every one of the 18 files held besides the values above.
OLD_COMMON = {"model": {"checkpoint": None}, "task": {"mode": "automatic"},
              "optim": {"steps": 2000, "warmup_steps": 100, "schedule": "cosine"}, "eval": {"every": 200}}
# recipes/study/sam_vit_b_encoder_decoder_lora.yaml, verbatim (comments left out)
OLD_TEXT = """\
model:
  name: sam_vit_b
  checkpoint: null
strategy:
  component: encoder+decoder
  method: lora
task:
  mode: automatic
optim:
  lr: 0.0003
  steps: 2000
  warmup_steps: 100
  schedule: cosine
eval:
  every: 200
"""


@pytest.mark.parametrize("stem, model, component, method, lr", OLD_FILES, ids=[row[0] for row in OLD_FILES])
def test_generated_recipe_equals_the_old_file(stem, model, component, method, lr):
    old = {"model": {"name": model, **OLD_COMMON["model"]}, "strategy": {"component": component, "method": method},
           "task": OLD_COMMON["task"], "optim": {"lr": lr, **OLD_COMMON["optim"]}, "eval": OLD_COMMON["eval"]}
    generated = from_dict(TrainConfig, strategy_recipe(f"{model}/{component}/{method}"))
    assert to_dict(generated) == to_dict(from_dict(TrainConfig, old))


def test_the_old_file_text_and_the_cli_overrides(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(OLD_TEXT)
    overrides = ["model.checkpoint=/w/sam_vit_b_01ec64.pth", "data.train=train.csv", "optim.steps=50"]
    old = load_config(TrainConfig, path, overrides)
    generated = from_dict(TrainConfig, apply_overrides(strategy_recipe("sam_vit_b/encoder+decoder/lora"), overrides))
    assert to_dict(generated) == to_dict(old)
    assert generated.optim.steps == 50 and generated.optim.lr == 0.0003 and generated.optim.warmup_steps == 100


def test_bad_strategy_names_are_refused_with_close_matches():
    with pytest.raises(ConfigError, match="expected BACKBONE/COMPONENT/METHOD"):
        strategy_recipe("sam_vit_b/lora")
    with pytest.raises(UserError, match="did you mean sam_vit_b"):
        strategy_recipe("sam_vit_bb/decoder/lora")
    with pytest.raises(ConfigError, match="did you mean 'encoder\\+decoder'"):
        strategy_recipe("sam_vit_b/encoder_decoder/lora")
    # the deleted file names point at the flag
    with pytest.raises(ConfigError, match="--strategy BACKBONE/COMPONENT/METHOD \\(e.g. sam_vit_h/encoder\\+decoder/full\\)"):
        resolve_recipe("study/sam_vit_h_encoder_decoder_full")
