"""LoRA on the image encoder during pretraining: merged on export, official layout, encoder-only change."""

import pytest
import torch

import samtune
from samtune.assets import mni_template
from samtune.engine.pretrain import pretrain
from samtune.engine.pretrain_config import PretrainConfig
from samtune.errors import ConfigError
from samtune.models.checkpoint import load_weights, read_state_dict


def lora_config(method: str = "lora") -> PretrainConfig:
    config = PretrainConfig()
    config.model.name, config.model.image_size = "sam_vit_test", 64
    config.strategy.method, config.strategy.options = method, {"rank": 2}
    config.data.sources = [str(mni_template("t1"))]
    config.masking.patch = 16
    config.optim.steps, config.optim.lr, config.optim.warmup_steps = 3, 1e-2, 0
    config.eval.every, config.eval.images = 3, 1
    config.run.device, config.run.threads, config.run.tensorboard = "cpu", 1, "off"
    return config


def test_lora_pretraining_exports_merged_official_weights_changing_only_encoder_qkv(tmp_path):
    pretrain(lora_config(), tmp_path / "run")
    exported = read_state_dict(tmp_path / "run" / "weights" / "sam_pretrained.pth")
    torch.manual_seed(0)  # the random initialisation pretrain made right after seeding with run.seed
    base = samtune.create_model("sam_vit_test", pretrained=None, image_size=64)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    load_weights(base, exported, "export")  # strict: the official keys, no LoRA keys
    assert set(exported) == set(before)
    changed = sorted(k for k in before if not torch.equal(before[k], exported[k]))
    # LoRA sits on q and v of every encoder block's fused qkv: nothing else may move
    assert changed and all(k.startswith("image_encoder.") and k.endswith("attn.qkv.weight") for k in changed), changed
    blocks = {k for k in before if k.endswith("attn.qkv.weight") and k.startswith("image_encoder.")}
    assert set(changed) == blocks


def test_adapters_cannot_pretrain(tmp_path):
    with pytest.raises(ConfigError, match="strategy.method 'adapter' cannot pretrain"):
        pretrain(lora_config("adapter"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
