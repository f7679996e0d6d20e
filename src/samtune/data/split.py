"""Few-shot train/val splits by patient group, seeded, written as list files.

Groups (patients, see `Case.group`) are shuffled with ``np.random.default_rng(seed)``
after sorting them by name, so a split depends only on the group names and the seed, not
on the order of rows. ``shots`` groups go to training and ``val`` groups (default: all
the others) to validation; every case of a group goes to the same side, so slices of one
patient are never split. For 2D lists without patient information each image is its own
group, so ``shots`` is a number of images.

`write_split` writes ``train.csv`` and ``val.csv`` (header ``image,mask,case,group``,
paths relative to the output folder, loadable with `load_source`) and ``split.json``
(seed, shots, case ids per side).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samtune.atomic import atomic_path
from samtune.data.sources import Case, Source
from samtune.errors import DataError


@dataclass(frozen=True)
class Split:
    """Cases per side of a split, in source order."""

    train: list[Case]
    val: list[Case]
    shots: int
    seed: int


def split_cases(source: Source | list[Case], shots: int, seed: int, val: int | None = None) -> Split:
    """Pick ``shots`` patient groups for training and ``val`` (default: the rest) for validation."""
    cases = source.cases if isinstance(source, Source) else list(source)
    groups = sorted({case.group for case in cases})
    if shots < 1:
        raise DataError(f"--shots must be at least 1, got {shots}")
    if shots >= len(groups):
        raise DataError(
            f"--shots {shots} leaves no validation case: the source has {len(groups)} patient "
            f"group(s); use --shots {max(len(groups) - 1, 1)} or fewer"
        )
    remaining = len(groups) - shots
    if val is not None and not 1 <= val <= remaining:
        raise DataError(f"--val must be between 1 and {remaining} (groups left after training), got {val}")
    order = np.random.default_rng(seed).permutation(len(groups))
    train_groups = {groups[i] for i in order[:shots]}
    val_groups = {groups[i] for i in order[shots: shots + (val if val is not None else remaining)]}
    return Split(
        train=[c for c in cases if c.group in train_groups],
        val=[c for c in cases if c.group in val_groups],
        shots=shots,
        seed=seed,
    )


def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def _list_text(cases: list[Case], out_dir: Path) -> str:
    def rel(path: Path) -> str:
        # abspath, not resolve(): keep the user's spelling through symlinks (a data
        # folder linked into a project stays linked in the list file).
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir))).as_posix()

    lines = ["image,mask,case,group"]
    for case in cases:
        cells = [";".join(rel(p) for p in case.images), rel(case.mask) if case.mask else "",
                 case.case_id, case.group]
        for cell in cells:
            if "," in cell or '"' in cell:
                raise DataError(f"cannot write '{cell}' to a list file: it contains a comma or quote")
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def write_split(split: Split, out_dir: str | Path, source: Source | None = None) -> dict[str, Path]:
    """Write train.csv, val.csv and split.json into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"train": out_dir / "train.csv", "val": out_dir / "val.csv", "json": out_dir / "split.json"}
    _atomic_write_text(paths["train"], _list_text(split.train, out_dir))
    _atomic_write_text(paths["val"], _list_text(split.val, out_dir))
    summary = {
        "source": str(source.path) if source else None,
        "kind": source.kind if source else None,
        "shots": split.shots,
        "seed": split.seed,
        "train": [c.case_id for c in split.train],
        "val": [c.case_id for c in split.val],
        "train_groups": sorted({c.group for c in split.train}),
        "val_groups": sorted({c.group for c in split.val}),
    }
    _atomic_write_text(paths["json"], json.dumps(summary, indent=2) + "\n")
    return paths
