"""Study configurations: strict loading, base recipes, overrides and checks before any run."""

from __future__ import annotations

import pytest
from tests.helpers.tiny_study import study_dict, write_study

from samtune.errors import ConfigError
from samtune.study.config import resolve_study
from samtune.study.preflight import load_study


def load(tmp_path, data, overrides=()):
    return load_study(write_study(tmp_path / "study.yaml", data), list(overrides))


def test_train_section_is_merged_on_the_base_recipe(disc_sources, tmp_path):
    config = load(tmp_path, study_dict(disc_sources, base="default"), ["train.optim.steps=7"])
    assert config.train.optim.steps == 7  # --set
    assert config.train.optim.lr == 0.003  # the study's train section
    assert config.train.optim.warmup_steps == 0
    assert config.train.strategy.method == "full" and config.train.eval.every == 3  # the recipe, then the study


def test_backbone_entries_default_to_their_label(disc_sources, tmp_path):
    data = study_dict(disc_sources, backbones={"tiny_vit_test": None, "vit_small": {"model": "sam_vit_test",
                                                                                    "image_size": 64}})
    config = load(tmp_path, data, ["backbones.vit_small.overrides=[optim.batch_size=2]"])
    assert config.backbone("tiny_vit_test").model == "tiny_vit_test"
    assert (config.backbone("vit_small").model, config.backbone("vit_small").image_size) == ("sam_vit_test", 64)
    assert config.backbone("vit_small").overrides == ["optim.batch_size=2"]


@pytest.mark.parametrize("change, message", [
    ({"train": {"optim": {"stepz": 3}}}, r"unknown configuration key 'train\.optim\.stepz'; did you mean steps"),
    ({"backbonez": {}}, r"unknown configuration key 'backbonez'; did you mean backbones"),
    ({"methods": ["full", "lorra"]}, r"unknown fine-tuning method 'lorra'; did you mean lora"),
    ({"components": ["decoder", "encoder"]}, r"components: unknown component 'encoder'"),
    ({"backbones": {"sam_vit_bb": {}}}, r"backbones\.sam_vit_bb: unknown model 'sam_vit_bb'; did you mean sam_vit_b"),
    ({"backbones": {"sam_vit_b": {}}}, r"backbones\.sam_vit_b: sam_vit_b has no packaged weights; add --set "
                                       r"backbones\.sam_vit_b\.checkpoint=PATH/sam_vit_b_01ec64\.pth"),
    ({"backbones": {"sam_vit_b": {"checkpoint": "/no/such.pth"}}}, r"backbones\.sam_vit_b: checkpoint not found"),
    ({"backbones": {"tiny vit": {"model": "tiny_vit_test"}}}, r"label 'tiny vit' names run directories"),
    ({"datasets": {"x": {"train": "/no/such/train.csv", "val": "/no/such/val.csv"}}},
     r"datasets\.x\.train: data source not found: /no/such/train\.csv"),
    ({"datasets": {}}, r"datasets: give at least one"),
    ({"seeds": [0, 0]}, r"seeds: \[0, 0\] repeats a value"),
    ({"shots": [0]}, r"shots: 0 must be >= 1"),
    ({"per_method": {"adapter": ["optim.lr=0.1"]}}, r"per_method: adapter not among methods"),
    ({"per_method": {"lora": ["strategy.method=full"]}}, r"per_method\.lora: 'strategy\.method' is set by the study"),
    ({"per_method": {"lora": ["optim.lrr=0.1"]}}, r"unknown configuration key 'per_method\.lora\.optim\.lrr'"),
    ({"train": {"data": {"train": "x.csv"}}}, r"train\.data\.train is set; in a study the sources are given per"),
    ({"inits": {"medsam": {"checkpoint": None, "backbones": ["nope"]}}}, r"inits\.medsam\.backbones: nope not among"),
])
def test_mistakes_fail_before_anything_runs(disc_sources, tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, study_dict(disc_sources, **change))


def test_a_val_or_test_source_is_required(disc_sources, tmp_path):
    data = study_dict(disc_sources)
    del data["datasets"]["discs"]["val"]
    with pytest.raises(ConfigError, match=r"datasets\.discs: give val \(and/or test\)"):
        load(tmp_path, data)


def test_shipped_studies_resolve_and_check(tmp_path, monkeypatch):
    assert resolve_study("cpu_prostate").name == "cpu_prostate.yaml"
    with pytest.raises(ConfigError, match="nor a shipped study: cpu_prostate, cpu_prostate_baselines, full_gpu"):
        resolve_study("cpu_prostrate")
    with pytest.raises(ConfigError, match=r"backbones\.sam_vit_h: sam_vit_h has no packaged weights"):
        load_study("full_gpu")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    sets = [f"backbones.{b}.checkpoint={weights}" for b in ("sam_vit_h", "sam_vit_b", "mobile_sam")]
    with pytest.raises(ConfigError, match="datasets: give at least one"):
        load_study("full_gpu", sets)
    config = load_study("full_gpu", sets + [f"datasets.mine={{train: {tmp_path}, val: {tmp_path}}}"])
    assert len(config.backbones) * len(config.components) * len(config.methods) == 18
    assert config.per_method == {"full": ["optim.lr=0.0001"]} and config.train.run.precision == "bf16"
