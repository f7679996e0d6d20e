"""Grid expansion: cells, their ids, order and training configurations."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers.tiny_study import study_dict, write_study

from samtune.study.preflight import load_study
from samtune.study.cost import cell_kind, count_slices, encoder_forward_seconds, estimate_cell
from samtune.study.grid import expand_cells

REPO = Path(__file__).resolve().parents[2]
PROSTATE = REPO.parent / "shared" / "data" / "MRI-Prostate"


def cells_of(tmp_path, data, overrides=()):
    return expand_cells(load_study(write_study(tmp_path / "study.yaml", data), list(overrides)), tmp_path / "out")


def test_the_study_grid_is_3_backbones_x_2_components_x_3_methods_by_default(disc_sources, tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    data = study_dict(disc_sources, backbones={"sam_vit_b": {"checkpoint": str(weights)}, "sam_vit_test": {},
                                               "tiny_vit_test": {}})
    del data["components"], data["methods"]
    cells = cells_of(tmp_path, data, ["seeds=[0,1]"])
    assert len(cells) == 2 * 18
    assert [c.strategy for c in cells[:6]] == [
        f"sam_vit_b/{component}/{method}" for component in ("decoder", "encoder+decoder")
        for method in ("full", "adapter", "lora")
    ]
    assert [c.seed for c in cells] == [0] * 18 + [1] * 18  # a whole table with seed 0 first
    assert cells[0].cell_id == "discs__sam_vit_b__decoder__full__seed0"
    assert cells[4].cell_id == "discs__sam_vit_b__encoder_decoder__adapter__seed0"
    assert cells[0].config.model.checkpoint == str(weights.absolute())
    assert cells[6].config.model.checkpoint is None


def test_each_cell_config_carries_its_axes_and_overrides(disc_sources, tmp_path):
    data = study_dict(disc_sources, per_method={"full": ["optim.lr=0.0001"]},
                      backbones={"small": {"model": "sam_vit_test", "image_size": 64,
                                           "overrides": ["optim.batch_size=2"]}})
    data["datasets"]["discs"].update(labels="binary", window="40,400")
    cells = cells_of(tmp_path, data, ["train.data.percentiles=[1,99]"])
    full, lora = cells[0].config, cells[1].config
    assert (full.model.name, full.model.image_size, full.optim.batch_size) == ("sam_vit_test", 64, 2)
    assert (full.strategy.component, full.strategy.method, full.optim.lr) == ("decoder", "full", 0.0001)
    assert (lora.strategy.method, lora.optim.lr) == ("lora", 0.003)
    assert (full.data.labels, full.data.window, full.data.percentiles) == ("binary", "40,400", [1, 99])
    assert full.data.train == str(Path(disc_sources["train"]).absolute()) and full.run.seed == 0
    assert cells[0].score_source is None and cells[0].scored_on == "val"


def test_few_shot_and_initial_weights_axes(disc_sources, tmp_path):
    weights = tmp_path / "medsam.pth"
    weights.write_bytes(b"")
    data = study_dict(disc_sources, components=["decoder"], methods=["full"], shots=[2, None],
                      inits={"own": None, "medsam": {"checkpoint": str(weights)}})
    data["datasets"]["discs"]["test"] = str(disc_sources["val"])
    cells = cells_of(tmp_path, data)
    assert [c.cell_id for c in cells] == [
        "discs__tiny_vit_test__init-own__decoder__full__seed0__shots2",
        "discs__tiny_vit_test__init-medsam__decoder__full__seed0__shots2",
        "discs__tiny_vit_test__init-own__decoder__full__seed0",
        "discs__tiny_vit_test__init-medsam__decoder__full__seed0",
    ]
    few = cells[0]
    split = tmp_path / "out" / "splits" / "discs" / "shots2_seed0"
    assert few.split_dir == split.absolute()
    assert few.config.data.train == str(split / "train.csv") and few.config.data.val == str(split / "val.csv")
    assert few.strategy == "tiny_vit_test@own/decoder/full" and cells[1].config.model.checkpoint == str(weights)
    assert few.scored_on == "test" and few.score_source == str(Path(disc_sources["val"]).absolute())
    assert cells[2].split_dir is None and cells[2].config.data.train == str(Path(disc_sources["train"]).absolute())


def test_cost_estimates_follow_the_cpu_table(disc_sources, tmp_path):
    assert encoder_forward_seconds("lite_medsam", None) == 1.3
    assert encoder_forward_seconds("sam_vit_b", None) == 11.0
    assert encoder_forward_seconds("sam_vit_b", 256) == pytest.approx(11.0 / 16)
    assert encoder_forward_seconds("sam_vit_h", None) == pytest.approx(11.0 * 2.973 / 0.487)
    assert count_slices(str(disc_sources["train"])) == 4
    data = study_dict(disc_sources, backbones={"lite_medsam": {}}, methods=["lora"])
    decoder, both = cells_of(tmp_path, data, ["train.optim.steps=100", "train.eval.every=50"])
    # decoder (cached embeddings): 4 train + 2 val slices encoded once, 0.3 s per step,
    # 2 validations of 2 slices at a third of a step, 2 slices scored, 5 s overhead
    assert estimate_cell(decoder, 4, 2, 2).seconds == pytest.approx(5 + 1.3 * 6 + 0.3 * 100 + 2 * 0.1 * 2 + 1.3 * 2)
    # encoder+decoder LoRA: 3 forwards per step, validations at full forward cost
    assert estimate_cell(both, 4, 2, 2).seconds == pytest.approx(5 + 1.3 * 3.0 * 100 + 2 * 1.3 * 2 + 1.3 * 2)
    measured = estimate_cell(both, 4, 2, 2, {cell_kind(both): 0.5})
    assert (measured.seconds, measured.basis) == (pytest.approx(5 + 0.5 * 100 + 1.3 * 2), "measured")


@pytest.mark.skipif(not PROSTATE.is_dir(), reason="needs ../shared/data/MRI-Prostate")
def test_cpu_prostate_recipe_is_six_lite_medsam_strategies_in_both_directions(monkeypatch):
    from samtune.study.runner import plan_study

    monkeypatch.chdir(REPO)
    config = load_study("cpu_prostate")
    planned = plan_study(config, REPO / "does-not-exist")
    strategies = [f"lite_medsam/{c}/{m}" for c in ("decoder", "encoder+decoder") for m in ("full", "adapter", "lora")]
    assert sorted(p.cell.strategy for p in planned) == sorted(strategies * 2)  # prostate and prostate_swapped
    assert {p.cell.cell_id.split("/")[0] for p in planned} >= {"prostate", "prostate_swapped"} or \
        len({p.cell.score_source or p.cell.config.data.val for p in planned}) == 2
    assert {p.cell.config.optim.lr for p in planned if p.cell.method == "full"} == {0.0001}
    assert all(p.status == "new" for p in planned)
    # The table is calibrated on one direction's own run: 49 min 16 s on 2 idle cores
    # (2026-11-28) against an estimate of about 50 min; two directions are twice that.
    assert 90 * 60 < sum(p.estimate.seconds for p in planned) < 110 * 60


@pytest.mark.skipif(not PROSTATE.is_dir(), reason="needs ../shared/data/MRI-Prostate")
def test_cpu_prostate_baselines_recipe_and_its_dry_run_estimate(monkeypatch):
    """Two LiteMedSAM strategies (a backbone's own `strategies`), the U-Net and nnU-Net 2d, both
    directions, 3 seeds; the dry-run estimate is the cost table's, nnU-Net's by its own formula."""
    pytest.importorskip("nnunetv2")
    from samtune.study import cost
    from samtune.study.runner import format_plan, plan_study

    monkeypatch.chdir(REPO)
    planned = plan_study(load_study("cpu_prostate_baselines"), REPO / "does-not-exist")
    rows = ["lite_medsam/decoder/full", "lite_medsam/encoder+decoder/full", "U-Net (scratch)",
            "nnU-Net 2d (nnUNetTrainer_1epoch, fold all)"]
    assert [p.cell.strategy for p in planned[:4]] == rows
    assert sorted(p.cell.strategy for p in planned) == sorted(rows * 6)  # 2 directions x 3 seeds
    nnunet = [p for p in planned if p.cell.engine]
    assert [p.cell.engine["dataset_id"] for p in nnunet] == [1, 2] * 3  # one nnU-Net dataset per direction
    table = cost.NNUNET_SETUP_S + 250 * cost.NNUNET_ITERATION_S + 50 * cost.NNUNET_VALIDATION_ITERATION_S + \
        5 * cost.NNUNET_PREDICT_SLICE_S  # 1 epoch, 5 scored slices
    assert all(p.estimate.seconds == pytest.approx(table) and p.estimate.basis == "table" for p in nnunet)
    unet = next(p for p in planned if p.cell.strategy == "U-Net (scratch)")
    assert unet.estimate.seconds == pytest.approx(5 + 1.8 * 200 + 4 * 1.8 / 3 * 5 + 1.8 / 3 * 5)
    assert "24 cells: 24 new; about" in format_plan(planned)
