"""Values out of range are refused before anything is written (issue 11, item 1).

Each case runs the real command line through the `refused` fixture: exit code 2, one line
naming the key path and the value, no traceback, and nothing created under the folder the
command would write into. No model is built: the ranges are checked first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.generated_data import write_disc_dataset

RECIPE = {"model": {"name": "tiny_vit_test"}, "data": {"train": "train", "val": "val"},
          "optim": {"steps": 3}, "run": {"device": "cpu"}}

# (--set override, names the refusal must hold): one per configuration key and bound.
TRAIN_CASES = [
    ("optim.lr=-0.001", ["optim.lr", "-0.001", "> 0"]),
    ("optim.lr=0", ["optim.lr", "0.0", "> 0"]),
    ("optim.lr=.nan", ["optim.lr", "nan"]),
    ("optim.lr=.inf", ["optim.lr", "inf"]),
    ("optim.weight_decay=-0.01", ["optim.weight_decay", "-0.01"]),
    ("optim.steps=0", ["optim.steps", "0", ">= 1"]),
    ("optim.steps=-5", ["optim.steps", "-5"]),
    ("optim.batch_size=0", ["optim.batch_size", "0"]),
    ("optim.accumulation=0", ["optim.accumulation", "0"]),
    ("optim.warmup_steps=-1", ["optim.warmup_steps", "-1"]),
    ("optim.clip_grad=0", ["optim.clip_grad", "0.0"]),
    ("optim.clip_grad=-1", ["optim.clip_grad", "-1.0"]),
    ("loss.dice=-1", ["loss.dice", "-1.0"]),
    ("loss.ce=.nan", ["loss.ce", "nan"]),
    ("eval.every=0", ["eval.every", "0", ">= 1"]),
    ("eval.patience=0", ["eval.patience", "0"]),
    # method options are checked by the method (a space separates two --set values here)
    ("strategy.method=lora strategy.options.rank=0", ["options.rank", "0"]),
    ("strategy.method=lora strategy.options.alpha=0", ["options.alpha", "0"]),
    ("strategy.method=lora strategy.options.dropout=1", ["options.dropout", "1", "[0, 1)"]),
    ("strategy.method=lora strategy.options.dropout=-0.1", ["options.dropout", "-0.1"]),
    ("strategy.method=adapter strategy.options.blocks=[0,1.5]", ["options.blocks", "1.5"]),
    ("data.axis=3", ["data.axis", "3"]),
    ("data.axis=-1", ["data.axis", "-1"]),
    ("data.channels=[0,1]", ["data.channels", "[0, 1]"]),
    ("data.channels=[-1]", ["data.channels[0]", "-1"]),
    ("data.percentiles=[99.5,0.5]", ["data.percentiles", "[99.5, 0.5]", "0 <= low < high <= 100"]),
    ("data.percentiles=[0,101]", ["data.percentiles", "101"]),
    ("data.percentiles=[1]", ["data.percentiles", "[1.0]"]),
    ("data.empty_slices=-0.5", ["data.empty_slices", "-0.5"]),
    ("data.empty_slices=lots", ["data.empty_slices", "lots"]),
    ("data.window=40,-400", ["data.window", "40,-400", "width > 0"]),
    ("data.window=bones", ["data.window", "bones"]),
    ("run.seed=-1", ["run.seed", "-1"]),
    ("run.seed=4294967296", ["run.seed", "4294967296"]),
    ("run.log_every=0", ["run.log_every", "0"]),
    ("run.checkpoint_every=0", ["run.checkpoint_every", "0"]),
    ("run.threads=0", ["run.threads", "0"]),
    ("data.workers=-1", ["data.workers", "-1", ">= 0"]),
    ("data.cache_mb=0", ["data.cache_mb", "0", "> 0"]),
    ("model.image_size=8", ["model.image_size", "8", ">= 16"]),
]


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


@pytest.mark.parametrize("override, names", TRAIN_CASES, ids=[case[0] for case in TRAIN_CASES])
def test_train_value_out_of_range(refused, tmp_path, recipe, override, names):
    sets = [arg for value in override.split(" ") for arg in ("--set", value)]
    refused(["train", recipe, *sets, "--out", tmp_path / "run"], watch=[tmp_path], names=names)


def test_train_both_losses_zero(refused, tmp_path, recipe):
    refused(["train", recipe, "--set", "loss.dice=0", "--set", "loss.ce=0", "--out", tmp_path / "run"],
            watch=[tmp_path], names=["loss.dice", "loss.ce"])


def test_train_window_and_percentiles(refused, tmp_path, recipe):
    refused(["train", recipe, "--set", "data.window=brain", "--set", "data.percentiles=[1,99]",
             "--out", tmp_path / "run"], watch=[tmp_path], names=["data.window", "data.percentiles"])


@pytest.mark.parametrize("model, size, hint", [
    ("sam_vit_test", 100, "multiple of 16"),
    ("lite_medsam", 512, "native 256"),
    ("sam_vit_b", 1000, "multiple of 16"),
])
def test_train_image_size_the_model_cannot_take(refused, tmp_path, recipe, model, size, hint):
    refused(["train", recipe, "--set", f"model.name={model}", "--set", f"model.image_size={size}",
             "--out", tmp_path / "run"], watch=[tmp_path], names=["model.image_size", str(size), hint])


def test_value_in_recipe_file_named_with_its_key(refused, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "eval": {"every": 0}}))
    refused(["train", path, "--out", tmp_path / "run"], watch=[tmp_path], names=["eval.every", "0"])


def test_train_strategy_refusals(tmp_path, refused):
    refused(["train", "--strategy", "sam_vit_b/decoder/lorra", "--out", tmp_path / "run"], watch=[tmp_path],
            names=["'lorra'; did you mean lora"])
    refused(["train", "default", "--strategy", "sam_vit_b/decoder/lora", "--out", tmp_path / "run"], watch=[tmp_path],
            names=["default", "--strategy sam_vit_b/decoder/lora"])
    refused(["train", "study/sam_vit_b_decoder_full", "--out", tmp_path / "run"], watch=[tmp_path],
            names=["--strategy", "sam_vit_b/decoder/full"])


def test_the_ranges_accept_the_shipped_recipes():
    """Every shipped recipe and study passes the range checks (no valid value refused)."""
    from samtune.configs import from_dict, load_config
    from samtune.engine.config import TrainConfig, check_values
    from samtune.engine.recipes import resolve_recipe, strategy_recipe
    from samtune.methods.strategy import study_strategies
    from samtune.study.config import study_recipe_dir

    root = study_recipe_dir().parent
    recipes = sorted(root.glob("*.yaml"))
    assert recipes
    for path in recipes:
        check_values(load_config(TrainConfig, resolve_recipe(str(path))))
    for strategy in study_strategies(("sam_vit_h", "sam_vit_b", "mobile_sam"), extra=False):  # --strategy
        check_values(from_dict(TrainConfig, strategy_recipe(strategy.name)))
    for path in sorted(study_recipe_dir().glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        train = data.get("train") or {}
        check_values(load_config(TrainConfig, resolve_recipe(data["base"]) if data.get("base") else None,
                                 [f"{k}.{kk}={v}" for k, sec in train.items() for kk, v in sec.items()]))


# ---------------------------------------------------------------- studies

@pytest.fixture(scope="module")
def discs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("value_discs")
    return {"train": write_disc_dataset(root / "train", 2, seed=1, size=32),
            "val": write_disc_dataset(root / "val", 1, seed=2, size=32)}


def _study(tmp_path: Path, discs: dict[str, Path], **changes) -> Path:
    data = {
        "train": {"optim": {"steps": 2}, "run": {"device": "cpu"}},
        "backbones": {"tiny_vit_test": {}},
        "components": ["decoder"],
        "methods": ["full"],
        "datasets": {"discs": {"train": str(discs["train"]), "val": str(discs["val"])}},
        "seeds": [0],
    }
    data.update(changes)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


STUDY_CASES = [
    ({"train": {"optim": {"lr": -0.5}}}, ["train.optim.lr", "-0.5"]),
    ({"train": {"eval": {"every": 0}}}, ["train.eval.every", "0"]),
    ({"train": {"data": {"axis": 4}}}, ["train.data.axis", "4"]),
    ({"per_method": {"full": ["optim.steps=0"]}}, ["per_method.full", "optim.steps", "0"]),
    ({"backbones": {"tiny_vit_test": {"overrides": ["optim.lr=-2"]}}},
     ["backbones.tiny_vit_test.overrides", "optim.lr", "-2"]),
    ({"backbones": {"sam_vit_test": {"image_size": 72}}}, ["backbones.sam_vit_test.image_size", "72"]),
    ({"seeds": [0, -3]}, ["seeds", "-3"]),
    ({"shots": [0]}, ["shots", "0"]),
    ({"score": {"nsd_tolerance": -1.0}}, ["score.nsd_tolerance", "-1.0"]),
    ({"score": {"batch_size": 0}}, ["score.batch_size", "0"]),
    ({"score": {"device": "tpu"}}, ["score.device", "tpu"]),
]


@pytest.mark.parametrize("changes, names", STUDY_CASES, ids=[n[0] for _, n in STUDY_CASES])
def test_study_value_out_of_range(refused, tmp_path, discs, changes, names):
    path = _study(tmp_path, discs, **changes)
    refused(["study", path, "--out", tmp_path / "out"], watch=[tmp_path], names=names)


@pytest.mark.parametrize("key, value, names", [
    ("axis", 7, ["datasets.discs.axis", "7"]),
    ("percentiles", [50, 50], ["datasets.discs.percentiles", "[50.0, 50.0]"]),
    ("window", "0,0", ["datasets.discs.window", "0,0"]),
    ("channels", [0, 1], ["datasets.discs.channels"]),
])
def test_study_dataset_value_out_of_range(refused, tmp_path, discs, key, value, names):
    dataset = {"train": str(discs["train"]), "val": str(discs["val"]), key: value}
    path = _study(tmp_path, discs, datasets={"discs": dataset})
    refused(["study", path, "--out", tmp_path / "out"], watch=[tmp_path], names=names)


def test_study_set_override_out_of_range(refused, tmp_path, discs):
    path = _study(tmp_path, discs)
    refused(["study", path, "--set", "train.optim.batch_size=0", "--out", tmp_path / "out"],
            watch=[tmp_path], names=["train.optim.batch_size", "0"])


# ------------------------------------------------------------ command flags

def test_demo_steps_zero(refused, tmp_path):
    refused(["demo", "--steps", "0", "--out", tmp_path / "demo"], watch=[tmp_path], names=["--steps", "0"])


def test_demo_seed_negative(refused, tmp_path):
    refused(["demo", "--seed", "-1", "--out", tmp_path / "demo"], watch=[tmp_path], names=["--seed", "-1"])


def test_data_split_shots_zero(refused, tmp_path, discs):
    refused(["data", "split", discs["train"], "--shots", "0", "--out", tmp_path / "split"],
            watch=[tmp_path, discs["train"]], names=["--shots", "0"])


def test_data_split_negative_val(refused, tmp_path, discs):
    refused(["data", "split", discs["train"], "--shots", "1", "--val", "-1", "--out", tmp_path / "split"],
            watch=[tmp_path, discs["train"]], names=["--val", "-1"])


def test_eval_negative_nsd_tolerance(refused, tmp_path, discs):
    refused(["eval", "--pred", discs["val"] / "masks", "--gt", discs["val"] / "masks", "--nsd-tolerance", "-2",
             "--out", tmp_path / "eval"], watch=[tmp_path], names=["--nsd-tolerance", "-2"])


def test_predict_batch_size_zero(refused, tmp_path, discs):
    image = discs["val"] / "images" / "case00.png"
    refused(["predict", image, "--model", "tiny_vit_test", "--batch-size", "0", "--out", tmp_path / "pred"],
            watch=[tmp_path], names=["--batch-size", "0"])


def test_study_cell_whose_combined_values_clash(refused, tmp_path, discs):
    """A dataset's CT window meets the training values' MR percentiles only in the cells:
    refused before the study folder exists, naming the cell."""
    dataset = {"train": str(discs["train"]), "val": str(discs["val"]), "window": "40,400"}
    path = _study(tmp_path, discs, datasets={"discs": dataset},
                  train={"optim": {"steps": 2}, "data": {"percentiles": [1, 99]}})
    refused(["study", path, "--out", tmp_path / "out"], watch=[tmp_path],
            names=["cell discs__tiny_vit_test__decoder__full__seed0", "data.window", "data.percentiles"])
