"""What a study checks before its folder is created (issue 11: validate, then write).

`load_study` has checked names, paths and value ranges of the study definition; here,
with the cells expanded, every cell's training values are checked (a dataset's values
combined with a method's overrides can still clash), every data source is read once the
way training reads it (readable, decodable, finite, consistent sizes, known labels), and
the output folder must be creatable and writable, and be a study folder if it exists.
A study that fails these checks leaves the file system as it found it.
"""

from __future__ import annotations

from pathlib import Path

from samtune.errors import ConfigError, UserError
from samtune.outputs import check_output_folder
from samtune.study.config import StudyConfig
from samtune.study.grid import Cell

STUDY_FILE = "study.yaml"


def check_study_folder(out_dir: Path) -> None:
    """`out_dir` is new (creatable), empty, or a study folder (continued)."""
    out_dir = Path(out_dir)
    is_study = (out_dir / STUDY_FILE).is_file() or (out_dir / "runs").is_dir()
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_study:
        raise UserError(f"--out {out_dir} already holds files but is not a study folder (no {STUDY_FILE}); "
                        "choose another --out")
    check_output_folder(out_dir, overwrite=True)  # a file, a file as parent, not writable


def check_cells(cells: list[Cell]) -> None:
    """Every cell's combined training values (ranges) and strategy."""
    from samtune.engine.config import check_values
    from samtune.methods.registry import get_method

    for cell in cells:
        try:
            check_values(cell.config)
            get_method(cell.config.strategy.method)
        except ConfigError as error:
            raise ConfigError(f"cell {cell.cell_id}: {error}") from None


def check_sources(config: StudyConfig) -> None:
    """Read every case of every dataset source, as training and scoring will (DataError naming the file)."""
    from samtune.data.labels import parse_label_spec
    from samtune.data.sources import load_source
    from samtune.data.validate import check_source

    for name, dataset in config.datasets.items():
        spec = dataset.labels or config.train.data.labels
        labels = parse_label_spec(spec) if spec else None
        axis = dataset.axis if dataset.axis is not None else config.train.data.axis
        channels = dataset.channels if dataset.channels is not None else config.train.data.channels
        for key in ("train", "val", "test"):
            path = getattr(dataset, key)
            if not path:
                continue
            try:
                source = load_source(path)
            except UserError as error:
                raise type(error)(f"datasets.{name}.{key}: {error}") from None
            check_source(source, labels, axis, tuple(channels) if channels else None).raise_if_fatal()


def preflight(config: StudyConfig, out_dir: Path, cells: list[Cell]) -> None:
    """All of the above, cheapest first."""
    check_study_folder(out_dir)
    check_cells(cells)
    check_sources(config)
    if any(cell.engine for cell in cells):
        from samtune.study.nnunet_study import check_nnunet_folders

        check_nnunet_folders(out_dir, cells)
