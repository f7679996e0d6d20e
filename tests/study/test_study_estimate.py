"""Study estimates use progress (issue 12, item 8); `study` asks for --out and says where
and how long before the first cell (item 9)."""

from __future__ import annotations

import pytest
import torch
from tests.helpers.tiny_study import study_dict, write_study

from samtune.cli.main import main
from samtune.configs import save_config
from samtune.study.preflight import load_study
from samtune.study.cost import CELL_OVERHEAD_S, estimate_cell
from samtune.study.grid import expand_cells
from samtune.study.runner import plan_study


def _lite_medsam_lora(disc_sources, tmp_path):
    data = study_dict(disc_sources, backbones={"lite_medsam": {}}, components=["encoder+decoder"], methods=["lora"],
                      train={"optim": {"steps": 200}, "eval": {"every": 50}})
    return load_study(write_study(tmp_path / "s.yaml", data))


def test_an_interrupted_cell_is_estimated_for_its_remaining_steps(disc_sources, tmp_path):
    config = _lite_medsam_lora(disc_sources, tmp_path)
    out = tmp_path / "out"
    (cell,) = expand_cells(config, out)
    # Table figures: LiteMedSAM forward 1.3 s; encoder+decoder LoRA step 3.0 x 1.3 = 3.9 s;
    # a validation of 2 slices 2 x 1.3 = 2.6 s every 50 steps; scoring 2 slices 2.6 s.
    fresh = CELL_OVERHEAD_S + 3.9 * 200 + 4 * 2.6 + 2.6
    resumed = CELL_OVERHEAD_S + 3.9 * 80 + 2 * 2.6 + 2.6  # validations at 150 and 200 left
    assert estimate_cell(cell, 4, 2, 2).seconds == pytest.approx(fresh)
    assert estimate_cell(cell, 4, 2, 2, done_steps=120).seconds == pytest.approx(resumed)

    # The plan reads the step from the cell's checkpoint (interrupted: state, no summary).
    run = out / "runs" / cell.cell_id
    save_config(cell.config, run / "config.yaml")
    (run / "state").mkdir()
    torch.save({"step": 120, "model": {}}, run / "state" / "last.pt")
    (entry,) = plan_study(config, out)
    assert entry.status == "resume" and entry.estimate.seconds == pytest.approx(resumed)


def test_study_says_folder_and_estimate_before_the_first_cell(disc_sources, tmp_path, capsys, keep_torch_threads):
    path = write_study(tmp_path / "one.yaml", study_dict(disc_sources, components=["decoder"], methods=["full"]))
    out = tmp_path / "out"
    assert main(["study", str(path), "--out", str(out), "--in-process"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"study folder {out}: 1 of 1 cell(s) to run, about ")
    assert "(table" in lines[0] and str(out / "results.md") in lines[0]
    assert lines[1].startswith("[1/1] ")
