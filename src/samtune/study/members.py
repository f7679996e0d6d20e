"""The runs of one strategy in a study folder (all its folds and seeds), for ensembles.

    samtune predict scans/ --run studies/mine --strategy lite_medsam/encoder+decoder/lora --out preds/

A ``--run`` that is a study folder (it holds ``study.yaml``) stands for the finished
runs of ``--strategy`` (the row label of results.md) on one dataset (``--dataset``,
needed when the study has several).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from samtune.errors import UserError


def is_study_folder(path: str | Path) -> bool:
    return (Path(path) / "study.yaml").is_file() and (Path(path) / "runs").is_dir()


def strategy_runs(out_dir: str | Path, strategy: str | None, dataset: str | None = None) -> list[Path]:
    """Run directories of the finished cells of ``strategy`` (and ``dataset``) in a study."""
    from samtune.study.preflight import load_study
    from samtune.study.grid import expand_cells
    from samtune.study.state import cell_status, run_dir

    out_dir = Path(out_dir)
    cells = expand_cells(load_study(out_dir / "study.yaml"), out_dir)
    strategies = list(dict.fromkeys(c.strategy for c in cells))
    if strategy is None:
        raise UserError(f"{out_dir} is a study folder: say which runs with --strategy (one of {', '.join(strategies)})")
    if strategy not in strategies:
        raise UserError(f"--strategy {strategy} is not in {out_dir}; its strategies: {', '.join(strategies)}")
    datasets = list(dict.fromkeys(c.dataset for c in cells))
    if dataset is None and len(datasets) > 1:
        raise UserError(f"{out_dir} has datasets {', '.join(datasets)}: choose one with --dataset")
    if dataset is not None and dataset not in datasets:
        raise UserError(f"--dataset {dataset} is not in {out_dir}; its datasets: {', '.join(datasets)}")
    chosen = [c for c in cells if c.strategy == strategy and c.dataset == (dataset or datasets[0])]
    done = [run_dir(out_dir, c) for c in chosen if cell_status(out_dir, c)[0] == "done"]
    if not done:
        raise UserError(f"{out_dir}: no finished run of {strategy} yet; run the study first")
    return done


def expand_runs(runs: Sequence[str | Path], strategy: str | None, dataset: str | None) -> list[Path]:
    """``--run`` values with study folders replaced by their strategy's runs."""
    expanded: list[Path] = []
    for run in runs:
        expanded += strategy_runs(run, strategy, dataset) if is_study_folder(run) else [Path(run)]
    if strategy is not None and not any(is_study_folder(r) for r in runs):
        raise UserError("--strategy goes with a study folder given as --run")
    return expanded
