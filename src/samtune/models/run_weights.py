"""Run directories given where weights are expected, and the reverse.

A `samtune pretrain` run directory marks itself with ``pretrain.json`` and exports the
whole model (pretrained image encoder, untouched prompt encoder and mask decoder) in
the official SAM key layout as ``weights/sam_pretrained.pth``. `model.checkpoint` may name
such a run: it resolves to that file. A fine-tuning run given as base weights, or a
pretrain run given where a fine-tuned model is needed, is one clear error.
"""

from __future__ import annotations

from pathlib import Path

from samtune.errors import CheckpointError

PRETRAIN_RECORD = "pretrain.json"  # in the run's root
PRETRAIN_EXPORT = "weights/sam_pretrained.pth"


def is_pretrain_run(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / PRETRAIN_RECORD).is_file()


def resolve_checkpoint(path: str | Path) -> Path:
    """A weights file as is; a pretrain run -> its exported weights; other folders refused."""
    path = Path(path)
    if not path.is_dir():
        return path
    if is_pretrain_run(path):
        weights = path / PRETRAIN_EXPORT
        if not weights.is_file():
            raise CheckpointError(
                f"pretrain run {path} has no exported weights ({PRETRAIN_EXPORT}) yet; "
                f"finish it first: samtune pretrain --resume {path}"
            )
        return weights
    if (path / "config.yaml").is_file() or (path / "weights" / "tuning.json").is_file():
        raise CheckpointError(
            f"{path} is a fine-tuning run, not base weights; give a weights file or a `samtune pretrain` run "
            "directory (use a fine-tuned run with --run in predict/eval; train and pretrain also take a finished "
            "prompted run as model.checkpoint, setup 2)"
        )
    raise CheckpointError(f"model.checkpoint {path} is a folder; give a weights file or a `samtune pretrain` run directory")


def refuse_pretrain_run(path: str | Path) -> None:
    """CheckpointError when `path` is a pretrain run given where a fine-tuned model is needed."""
    if is_pretrain_run(path):
        raise CheckpointError(
            f"{path} is a `samtune pretrain` run (an image encoder, no trained segmentation head); "
            f"fine-tune from it first: samtune train RECIPE --set model.checkpoint={path} --out RUN_DIR"
        )
