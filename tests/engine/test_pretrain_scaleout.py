"""Pretraining under DDP (2 gloo processes on the CPU) and with autocast precisions."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from samtune.assets import mni_template
from samtune.engine.pretrain import pretrain
from samtune.engine.pretrain_config import PretrainConfig
from samtune.errors import ConfigError

MNI = str(mni_template("t1"))


def tiny_config(steps: int = 2, precision: str = "fp32") -> PretrainConfig:
    config = PretrainConfig()
    config.model.name, config.model.image_size = "sam_vit_test", 64
    config.data.sources = [MNI]
    config.masking.patch = 16
    config.optim.steps, config.optim.lr, config.optim.warmup_steps = steps, 1e-3, 0
    config.eval.every, config.eval.images = steps, 1
    config.run.device, config.run.threads, config.run.tensorboard, config.run.log_every = "cpu", 1, "off", 1
    config.run.precision = precision
    return config


def test_two_ddp_ranks_end_with_the_same_weights(tmp_path):
    script = tmp_path / "ddp_pretrain.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import torch
        import torch.distributed as dist
        from samtune.engine import pretrain as P
        from tests.engine.test_pretrain_scaleout import tiny_config  # the repo root is on PYTHONPATH

        original = P.PretrainTrainer.train

        def train(self):  # every rank keeps its own final weights for the test to compare
            result = original(self)
            state = {{k: v.detach().clone() for k, v in self.core.state_dict().items()}}
            torch.save(state, {str(tmp_path)!r} + f"/rank{{dist.get_rank()}}.pt")
            return result

        P.PretrainTrainer.train = train
        P.pretrain(tiny_config(steps=3), {str(tmp_path / "run")!r})
    """))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29541",
               str(script)]
    root = str(Path(__file__).parents[2])  # so the script imports this module as tests.engine...
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert set(ranks[0]) == set(ranks[1])
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    torch.manual_seed(0)  # pretraining moved the encoder away from the seeded initialisation
    import samtune

    start = samtune.create_model("sam_vit_test", pretrained=None, image_size=64).image_encoder.state_dict()
    key = next(k for k in start if k.endswith("attn.qkv.weight"))
    assert not torch.equal(ranks[0][f"image_encoder.{key}"], start[key])
    assert (tmp_path / "run" / "summary.json").is_file()


def test_bf16_autocast_step_stays_close_to_fp32(tmp_path):
    if not torch.backends.mkldnn.is_available():  # CPU bf16 autocast kernels come from oneDNN
        pytest.skip("this torch build has no oneDNN: no bf16 autocast on the CPU")
    import json

    losses = {}
    for precision in ("fp32", "bf16"):
        pretrain(tiny_config(steps=1, precision=precision), tmp_path / precision)
        records = [json.loads(line) for line in (tmp_path / precision / "metrics.jsonl").read_text().splitlines()]
        losses[precision] = next(r["loss"] for r in records if "loss" in r)
    # Same weights, slices and masks: bf16 (8-bit mantissa) changes the first loss, by well under 5%.
    assert losses["bf16"] != losses["fp32"], "autocast had no effect"
    assert losses["fp32"] > 0 and abs(losses["bf16"] - losses["fp32"]) < 0.05 * losses["fp32"], losses


def test_fp16_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pretrain(tiny_config(steps=1, precision="fp16"), tmp_path / "fp16", device="cuda")
        assert (tmp_path / "fp16" / "summary.json").is_file()
    else:
        with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
            pretrain(tiny_config(steps=1, precision="fp16"), tmp_path / "fp16")
        assert not (tmp_path / "fp16").exists()
