"""Masked-image pretraining (setup 3) on real MNI slices: learning, run directory, resume, export."""

import json

import pytest
import torch

import samtune
from samtune.assets import mni_template
from samtune.engine.pretrain import pretrain
from samtune.engine.pretrain_config import PretrainConfig
from samtune.engine.state import load_training_state
from samtune.engine.trainer import Trainer
from samtune.models.checkpoint import read_state_dict

EXPORT = "weights/sam_pretrained.pth"


def mni_config(model: str, image_size: int, patch: int, steps: int, **changes) -> PretrainConfig:
    config = PretrainConfig()
    config.model.name, config.model.image_size = model, image_size
    config.data.sources = [str(mni_template("t1"))]  # 189 axial slices of the MNI T1 template
    config.masking.patch = patch
    config.optim.steps, config.optim.lr = steps, 1e-3
    config.eval.every, config.eval.images = 10, 2
    config.run.device, config.run.threads, config.run.log_every, config.run.tensorboard = "cpu", 1, 5, "off"
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        setattr(getattr(config, section), key, value)
    return config


def seeded_model(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    """The random initialisation `pretrain` makes right after seeding torch with run.seed."""
    torch.manual_seed(seed)
    return samtune.create_model(name, pretrained=None, **overrides)


def test_loss_falls_on_mni_slices_and_only_the_encoder_changes(tmp_path):
    run = tmp_path / "run"
    result = pretrain(mni_config("tiny_vit_test", 64, 16, steps=30), run)
    assert result.steps == 30
    for name in ("config.yaml", "run.json", "pretrain.json", "metrics.jsonl", "curves.png", "summary.json",
                 "reconstructions.png", "state/last.pt", EXPORT):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in records if "loss" in r]
    val = [r["val_loss"] for r in records if "val_loss" in r]
    assert len(train) == 6 and len(val) == 3
    # Stated margin: the masked-pixel L1 of steps 26-30 is under 60% of steps 1-5's (measured
    # 0.19 vs 0.56), and the fixed slices' loss falls by over 20% from step 10 to 30 (0.28 -> 0.19).
    assert train[-1] < 0.6 * train[0], train
    assert val[-1] < 0.8 * val[0], val
    summary = json.loads((run / "summary.json").read_text())
    assert summary["draws_per_source"] == {str(mni_template("t1")): 30}
    info = json.loads((run / "run.json").read_text())
    assert list(info["sources"].values()) == [{"images": 1, "slices": 189}]

    before = seeded_model("tiny_vit_test", image_size=64).state_dict()
    after = read_state_dict(run / EXPORT)
    assert after.keys() == before.keys()
    for key in before:
        if not key.startswith("image_encoder."):
            assert torch.equal(after[key], before[key]), key
        elif "running_" in key or "num_batches" in key:  # BatchNorm statistics stay as loaded
            assert torch.equal(after[key], before[key]), key
    changed = [k for k in before if k.startswith("image_encoder.") and not torch.equal(after[k], before[k])]
    assert len(changed) > 20


def test_resume_after_interrupt_is_bit_identical(tmp_path, monkeypatch):
    # SAM ViT with windowed + global attention and relative positions.
    config = mni_config("sam_vit_test", 64, 16, steps=6, eval__every=3, run__checkpoint_every=2, run__log_every=1)
    pretrain(config, tmp_path / "straight")
    original = Trainer._micro_step

    def interrupt_at_step_4(self, micro):
        if self.step == 4:
            raise KeyboardInterrupt
        return original(self, micro)

    monkeypatch.setattr(Trainer, "_micro_step", interrupt_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        pretrain(config, tmp_path / "resumed")
    monkeypatch.setattr(Trainer, "_micro_step", original)
    assert load_training_state(tmp_path / "resumed" / "state" / "last.pt")["step"] == 4
    pretrain(None, tmp_path / "resumed", resume=True)

    straight = load_training_state(tmp_path / "straight" / "state" / "last.pt")["trainable"]
    resumed = load_training_state(tmp_path / "resumed" / "state" / "last.pt")["trainable"]
    assert straight.keys() == resumed.keys() and "mask_token" in straight
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    a, b = read_state_dict(tmp_path / "straight" / EXPORT), read_state_dict(tmp_path / "resumed" / EXPORT)
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = lambda run: (tmp_path / run / "metrics.jsonl").read_text().splitlines()  # noqa: E731
    assert [json.loads(x)["step"] for x in lines("resumed")] == [json.loads(x)["step"] for x in lines("straight")]


def test_lite_medsam_export_loads_strictly_and_a_run_is_a_checkpoint(tmp_path):
    from tests.helpers.reference_models import ReferenceLiteMedSAM

    run = tmp_path / "run"
    pretrain(mni_config("lite_medsam", 256, 32, steps=1, eval__images=1), run)
    exported = read_state_dict(run / EXPORT)
    ReferenceLiteMedSAM().load_state_dict(exported, strict=True)  # the vendored LiteMedSAM code
    packaged = samtune.create_model("lite_medsam").state_dict()
    resumed_from_run = samtune.create_model("lite_medsam", checkpoint=run)  # model.checkpoint=RUN_DIR
    assert resumed_from_run.checkpoint_path == str(run / EXPORT)
    for key, value in resumed_from_run.state_dict().items():
        assert torch.equal(value, exported[key]), key
        if not key.startswith("image_encoder."):
            assert torch.equal(value, packaged[key]), key
    assert not torch.equal(exported["image_encoder.neck.0.weight"], packaged["image_encoder.neck.0.weight"])


def test_sam_vit_b_export_in_official_layout_loads_into_segment_anything(tmp_path):
    from tests.helpers.reference_models import segment_anything

    sa = segment_anything()
    torch.manual_seed(3)
    official = sa.sam_model_registry["vit_b"](checkpoint=None)
    start = {k: v.clone() for k, v in official.state_dict().items()}
    torch.save(start, tmp_path / "sam_vit_b_random.pth")
    config = mni_config("sam_vit_b", 64, 32, steps=1, eval__images=1, model__checkpoint=str(tmp_path / "sam_vit_b_random.pth"))
    pretrain(config, tmp_path / "run")
    exported = read_state_dict(tmp_path / "run" / EXPORT)
    official.load_state_dict(exported, strict=True)
    assert exported.keys() == start.keys()
    for key in start:
        if not key.startswith("image_encoder."):
            assert torch.equal(exported[key], start[key]), key
    assert not torch.equal(exported["image_encoder.blocks.0.attn.qkv.weight"], start["image_encoder.blocks.0.attn.qkv.weight"])


def test_fine_tune_from_a_pretrain_run(tmp_path):
    """model.checkpoint=PRETRAIN_RUN: training starts from the exported encoder; the result predicts."""
    from tests.helpers.generated_data import write_disc_dataset

    from samtune.engine.api import train
    from samtune.engine.config import TrainConfig
    from samtune.inference.predictor import Predictor

    pretrain(mni_config("sam_vit_test", 64, 16, steps=2, eval__images=1), tmp_path / "pt")
    config = TrainConfig()
    config.model.name, config.model.image_size, config.model.checkpoint = "sam_vit_test", 64, str(tmp_path / "pt")
    config.task.mode = "prompted"
    config.data.train = str(write_disc_dataset(tmp_path / "discs", 3, seed=1))
    config.optim.steps, config.run.threads, config.run.device, config.run.tensorboard = 2, 1, "cpu", "off"
    train(config, tmp_path / "ft")
    predictor = Predictor.from_run(tmp_path / "ft")
    exported = read_state_dict(tmp_path / "pt" / EXPORT)
    encoder = predictor.model.image_encoder.state_dict()  # decoder-only fine-tune: encoder = the pretrained one
    assert all(torch.equal(encoder[k], exported["image_encoder." + k]) for k in encoder)
