"""What a study checks before its folder is created (issue 11: validate, then write).

`load_study` reads a study definition (`samtune.study.config`) and checks its names, paths
and value ranges (`check_study`), the setups axis (`samtune.study.inits`) and nnU-Net
backbones (`samtune.study.nnunet_study`) included. `preflight` then, with the cells
expanded, checks every cell's training values (a dataset's values combined with a
method's overrides can still clash), reads every data source once the way training reads
it (readable, decodable, finite, consistent sizes, known labels), and requires the output
folder to be creatable and writable, and a study folder if it exists.
A study that fails these checks leaves the file system as it found it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from samtune.configs import apply_overrides, from_dict, load_yaml
from samtune.engine.config import check_data_values, check_image_size, check_values
from samtune.errors import ConfigError, UserError
from samtune.outputs import check_output_folder
from samtune.study.config import (
    BackboneConfig,
    DatasetConfig,
    StudyConfig,
    _merge,
    check_overrides,
    inits_for,
    resolve_study,
)
from samtune.study.grid import Cell

STUDY_FILE = "study.yaml"
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def load_study(path: str | Path | None = None, overrides: list[str] | None = None) -> StudyConfig:
    """Load and check a study: YAML (or a shipped study name) + `--set` overrides.

    The `train` section is merged on top of the `base` recipe before strict loading,
    so an unknown key anywhere is a ConfigError naming its path.
    """
    from samtune.engine.recipes import resolve_recipe

    data = load_yaml(resolve_study(path)) if path is not None else {}
    data = apply_overrides(data, list(overrides or []))
    train = data.get("train") or {}
    if not isinstance(train, dict):
        raise ConfigError("train: expected a mapping of training configuration sections")
    if data.get("base"):
        train = _merge(load_yaml(resolve_recipe(str(data["base"]))), train)
    data["train"] = train
    config = from_dict(StudyConfig, data)
    check_study(config)
    return config


def _check_labels(kind: str, labels: list[str] | dict[str, Any]) -> None:
    for label in labels:
        if not _LABEL.match(str(label)):
            raise ConfigError(
                f"{kind}: label '{label}' names run directories; use letters, digits, '_', '-' or '.'"
            )


def _check_file(path: str | None, where: str, what: str) -> None:
    if path and not Path(path).exists():
        raise ConfigError(f"{where}: {what} not found: {path}")


def check_study(config: StudyConfig) -> None:
    """Every name and path of the grid, before any cell runs (ConfigError naming it)."""
    from samtune.methods.registry import get_method
    from samtune.methods.strategy import COMPONENTS

    if not config.backbones:
        raise ConfigError("backbones: give at least one, e.g. 'backbones: {lite_medsam: {}}'")
    for name in ("components", "methods", "seeds"):
        values = getattr(config, name)
        if not values:
            raise ConfigError(f"{name}: give at least one value")
        if len(set(map(str, values))) != len(values):
            raise ConfigError(f"{name}: {values} repeats a value")
    _check_labels("backbones", config.backbones)
    _check_labels("datasets", config.datasets)
    _check_labels("inits", config.inits or {})
    for key in ("train", "val", "root"):
        if getattr(config.train.data, key):
            raise ConfigError(
                f"train.data.{key} is set; in a study the sources are given per dataset (datasets.NAME.train/val/test)"
                + (", with paths relative to each list file" if key == "root" else "")
            )
    _check_ranges(config)
    for component in config.components:
        if component not in COMPONENTS:
            raise ConfigError(f"components: unknown component '{component}' (choose {' or '.join(COMPONENTS)})")
    for method in config.methods:
        get_method(method)
    unknown = [m for m in config.per_method if m not in config.methods]
    if unknown:
        raise ConfigError(f"per_method: {', '.join(unknown)} not among methods ({', '.join(config.methods)})")
    for method, overrides in config.per_method.items():
        check_overrides(config.train, overrides, f"per_method.{method}")
    _check_inits(config)
    _check_backbones(config)
    _check_datasets(config)
    if any(entry is not None and entry.engine for entry in config.backbones.values()):
        from samtune.study.nnunet_study import check_nnunet_datasets

        check_nnunet_datasets(config)  # needs the data sources checked first
    for shots in config.shots or []:
        if shots is not None and shots < 1:
            raise ConfigError(f"shots: {shots} must be >= 1 (null = all training cases)")


def _check_ranges(config: StudyConfig) -> None:
    """Value ranges of the study's own keys and of its training values (`check_values`)."""
    import math

    check_values(config.train, "train.")
    for seed in config.seeds:
        if not 0 <= seed < 2**32:
            raise ConfigError(f"seeds: {seed} is out of range; give integers in [0, 2**32)")
    score = config.score
    if not (math.isfinite(score.nsd_tolerance) and score.nsd_tolerance >= 0):
        raise ConfigError(f"score.nsd_tolerance: {score.nsd_tolerance!r} is out of range; give a distance >= 0 (mm)")
    if score.batch_size is not None and score.batch_size < 1:
        raise ConfigError(f"score.batch_size: {score.batch_size} is out of range; give an integer >= 1, or null")
    if score.device not in ("auto", "cpu", "cuda") and not score.device.startswith("cuda:"):
        raise ConfigError(f"score.device: {score.device!r} is not a device; give auto, cpu or cuda")
    for label in config.backbones:
        entry = config.backbone(label)
        check_image_size(entry.model or label, entry.image_size, f"backbones.{label}.image_size")
    for name, dataset in config.datasets.items():
        check_data_values(dataset, f"datasets.{name}.")


def _check_inits(config: StudyConfig) -> None:
    for name, init in (config.inits or {}).items():
        if init is None:
            continue
        _check_file(init.checkpoint, f"inits.{name}", "checkpoint")
        unknown = [b for b in init.backbones or [] if b not in config.backbones]
        if unknown:
            raise ConfigError(
                f"inits.{name}.backbones: {', '.join(unknown)} not among backbones ({', '.join(config.backbones)})"
            )
        from samtune.study.inits import check_inits_entry

        check_inits_entry(config, name, init)


def _check_backbones(config: StudyConfig) -> None:
    from samtune.models.registry import get_spec

    for label in config.backbones:
        entry = config.backbone(label)
        where = f"backbones.{label}"
        if entry.engine is not None:
            from samtune.study.nnunet_study import check_nnunet_backbone

            check_nnunet_backbone(config, label)  # nnU-Net v2: no registered model behind it
            continue
        try:
            spec = get_spec(entry.model or label)
        except UserError as error:
            raise ConfigError(f"{where}: {error}") from None
        _check_file(entry.checkpoint, where, "checkpoint")
        if spec.family == "unet":  # the U-Net baseline: automatic, from scratch (issue 15)
            from samtune.engine.unet_setup import check_unet_config

            try:
                check_unet_config(config.train.task.mode, "full", entry.checkpoint)
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from None
        check_overrides(config.train, entry.overrides, f"{where}.overrides")
        _check_strategies(config, entry, where)
        inits = inits_for(config, label)
        if not inits:
            raise ConfigError(
                f"{where}: no entry of inits applies to it; add one with checkpoint: null (its own weights)"
            )
        own_weights = [name for name, init in inits if init is None or not init.checkpoint]
        if spec.weights.source == "user" and not entry.checkpoint and own_weights:
            raise ConfigError(
                f"{where}: {spec.name} has no packaged weights; add --set {where}.checkpoint=PATH/"
                f"{spec.weights.filename or 'WEIGHTS.pth'}, or remove it from backbones"
            )


def _check_strategies(config: StudyConfig, entry: BackboneConfig, where: str) -> None:
    """A backbone's own ``strategies`` list: pairs of the study's components and methods."""
    grid = [f"{c}/{m}" for c in config.components for m in config.methods]
    for pair in entry.strategies or []:
        if pair not in grid:
            raise ConfigError(f"{where}.strategies: '{pair}' is not a component/method pair of the study's "
                              f"components x methods ({', '.join(grid)})")


def _check_datasets(config: StudyConfig) -> None:
    if not config.datasets:
        raise ConfigError("datasets: give at least one, e.g. --set 'datasets.mine={train: train.csv, val: val.csv}'")
    for name, dataset in config.datasets.items():
        if not dataset.train:
            raise ConfigError(f"datasets.{name}.train: give the training source")
        if dataset.folds is not None:
            _check_folds(config, name, dataset)
        elif not (dataset.val or dataset.test):
            raise ConfigError(f"datasets.{name}: give val (and/or test): a source to score the runs on")
        for key in ("train", "val", "test"):
            _check_file(getattr(dataset, key), f"datasets.{name}.{key}", "data source")


def _check_folds(config: StudyConfig, name: str, dataset: DatasetConfig) -> None:
    """Cross-validation: at least 2 folds, at most one per patient group, no few-shot axis."""
    from samtune.data.sources import load_source

    assert dataset.folds is not None  # called for datasets that set folds
    if config.shots:
        raise ConfigError(f"datasets.{name}.folds: cross-validation and the shots axis do not combine; drop one")
    if dataset.folds < 2:
        raise ConfigError(f"datasets.{name}.folds: give 2 or more folds, got {dataset.folds}")
    _check_file(dataset.train, f"datasets.{name}.train", "data source")
    groups = len({case.group for case in load_source(dataset.train).cases})
    if dataset.folds > groups:
        raise ConfigError(f"datasets.{name}.folds: {dataset.folds} folds but {dataset.train} has {groups} patient "
                          f"group(s); use folds: {groups} or fewer")


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
