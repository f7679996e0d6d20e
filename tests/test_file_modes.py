"""Every writer leaves files with the permissions the user's umask gives (issue 12, item 2).

Atomic writes create a temporary file with `tempfile.mkstemp` (mode 0600) and rename it;
without a chmod, reports, configs, pictures and weights would be readable by their owner
only. Each writer runs here under umask 022 (expect 0644) and 027 (expect 0640).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

SRC = Path(__file__).parents[1] / "src" / "samtune"


def _report(path: Path) -> None:
    from samtune.evaluation.report import write_per_case_csv, write_summary_json

    write_summary_json({"n_cases": 0}, path / "summary.json")
    write_per_case_csv([], path / "per_case.csv")


def _config(path: Path) -> None:
    from samtune.configs import save_config
    from samtune.engine.config import TrainConfig

    save_config(TrainConfig(), path / "config.yaml")


def _state(path: Path) -> None:
    from samtune.engine.state import save_training_state

    save_training_state(path / "last.pt", {"step": 3})


def _run_json_and_curves(path: Path) -> None:
    from samtune.engine.curves import plot_training_curves
    from samtune.runs import write_json

    write_json(path / "summary.json", {"best": 0.5})
    plot_training_curves([{"step": 1, "loss": 0.5, "lr": 1e-4}, {"step": 1, "val_dice": 0.2}], path / "curves.png")


def _pictures(path: Path) -> None:
    from samtune.inference.overlay import overlay, save_png

    image = np.zeros((8, 8), np.uint8)
    save_png(overlay(image, image), path / "overlay.png")


def _comparison_and_card(path: Path) -> None:
    from samtune.engine.export_card import write_export_card
    from samtune.inference.comparison import Panel, comparison_figure

    image = np.zeros((8, 8), np.uint8)
    comparison_figure(image, [Panel("truth", image), Panel("zero-shot", image, 1.0)], path / "cmp.png", box=(1, 1, 5, 5))
    write_export_card({"num_multimask_outputs": 3}, path / "model.json")


def _labels(path: Path) -> None:
    from samtune.data.readers import write_image

    write_image(path / "mask.png", np.zeros((8, 8), np.uint8))
    write_image(path / "mask.nii.gz", np.zeros((2, 8, 8), np.uint8))


def _split(path: Path) -> None:
    from samtune.data.split import Split, write_split

    write_split(Split(train=[], val=[], shots=1, seed=0), path)


def _tuning(path: Path) -> None:
    import samtune
    from samtune.methods import Strategy, apply_strategy
    from samtune.methods.checkpoint import save_tuning

    model = samtune.create_model("tiny_vit_test", pretrained=False, image_size=32)
    apply_strategy(model, Strategy("tiny_vit_test", "decoder", "lora"))
    save_tuning(model, path / "tuning")


def _study_tables(path: Path) -> None:
    from samtune.study.results import write_results_csv
    from samtune.study.table import write_results_md

    write_results_csv([], path / "results.csv")
    write_results_md("| a |\n", path / "results.md")


WRITERS = [_report, _config, _state, _run_json_and_curves, _pictures, _comparison_and_card, _labels, _split, _tuning, _study_tables]


@pytest.mark.parametrize("mask", [0o022, 0o027])
@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w.__name__.strip("_"))
def test_writer_follows_umask(tmp_path, writer, mask):
    previous = os.umask(mask)
    try:
        writer(tmp_path)
    finally:
        os.umask(previous)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    expected = 0o666 & ~mask
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {oct(expected)}, modes


def test_no_writer_bypasses_atomic_path():
    """mkstemp/NamedTemporaryFile only in atomic.py (and the writability probe, which deletes it)."""
    users = sorted(
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if re.search(r"mkstemp|NamedTemporaryFile", path.read_text(encoding="utf-8"))
    )
    assert users == ["atomic.py", "outputs.py"]
