"""Expand a study into cells: one training configuration per point of the grid.

A cell is backbone x initial weights x component x method x dataset x few-shot size x
seed. Its id names its run directory (``OUT/runs/<id>``), e.g.
``prostate__lite_medsam__encoder_decoder__lora__seed0`` (``__init-<name>`` and
``__shots<k>`` are added when those axes are present). Cells are ordered seed first, so
that a first pass over the grid gives a complete table with one seed before any second
seed runs.

Few-shot cells train on a split written to ``OUT/splits/<dataset>/shots<k>_seed<s>/``
(`samtune.data.split`: ``k`` patient groups of the dataset's training source, drawn with
the cell's seed; its ``val.csv`` lists the dataset's validation cases unchanged). All
paths in the cells' configurations are absolute, so a study resumes from any folder.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, cast

from samtune.engine.config import TrainConfig
from samtune.errors import ConfigError
from samtune.methods.registry import get_method
from samtune.study.config import (
    BackboneConfig,
    DatasetConfig,
    InitConfig,
    StudyConfig,
    apply_train_overrides,
    inits_for,
)

if TYPE_CHECKING:
    from samtune.methods.strategy import Component


@dataclass(eq=False)
class Cell:
    """One run of the grid.

    Attributes:
        cell_id: unique name; the run directory is ``OUT/runs/<cell_id>``.
        backbone: backbone label (the study's key), `model` the registered model.
        init: initial-weights label, or None without that axis.
        shots: few-shot size, or None for the whole training source.
        config: the complete training configuration of the run.
        split_dir: few-shot split folder to write before training (None: no split).
        score_source: source to score (a dataset's test); None = the run's own data.val.
    """

    cell_id: str
    backbone: str
    model: str
    init: str | None
    component: str
    method: str
    dataset: str
    seed: int
    shots: int | None
    config: TrainConfig
    split_dir: Path | None
    score_source: str | None
    fold: int | None = None  # cross-validation fold (datasets.<name>.folds), else None
    folds: int | None = None
    engine: dict | None = None  # nnU-Net v2 settings (`samtune.study.nnunet_study.NnunetCell`), else None
    setup: int | None = None  # 1, 2 or 3 when the inits axis mixes setups (`samtune.study.inits`)

    @property
    def strategy(self) -> str:
        """Row label of the results table: backbone[@init]/component/method ("U-Net (scratch)" for
        the U-Net baseline, prefixed by its label when that is not the model's name)."""
        if self.engine:
            from samtune.study.nnunet_study import row_label

            return row_label(self.engine)
        if is_baseline(self.model):
            return BASELINE_ROW if self.backbone == self.model else f"{self.backbone}: {BASELINE_ROW}"
        backbone = f"{self.backbone}@{self.init}" if self.init else self.backbone
        if self.setup is not None:
            from samtune.study.inits import setup_label

            return f"{setup_label(self.setup)}: {backbone}/{self.component}/{self.method}"
        return f"{backbone}/{self.component}/{self.method}"

    @property
    def scored_on(self) -> str:
        return "test" if self.score_source else "val"


BASELINE_ROW = "U-Net (scratch)"


def is_baseline(model: str) -> bool:
    """A U-Net trained from scratch: one cell per dataset, seed and shots, not a strategy grid."""
    from samtune.errors import UserError
    from samtune.models.registry import get_spec

    try:
        return bool(model) and get_spec(model).family == "unet"
    except UserError:  # an unknown model is reported by the study's checks, not here
        return False


def _absolute(path: str | None) -> str | None:
    return str(Path(path).absolute()) if path else None


def cell_id(dataset: str, backbone: str, init: str | None, component: str, method: str, seed: int,
            shots: int | None, fold: int | None = None) -> str:
    parts = [dataset, backbone] + ([f"init-{init}"] if init else [])
    parts += [component.replace("+", "_"), method, f"seed{seed}"]
    if shots is not None:
        parts.append(f"shots{shots}")
    if fold is not None:
        parts.append(f"fold{fold}")
    return "__".join(parts)


def _declared_labels(path: str) -> str | None:
    """The label spec a source declares (nnU-Net dataset.json), kept for few-shot lists."""
    from samtune.data.sources import load_source

    labels = load_source(path).labels
    return labels.describe() if labels is not None and not labels.is_binary else None


def _train_config(config: StudyConfig, backbone: BackboneConfig, init: InitConfig | None, component: str,
                  method: str, seed: int, dataset: DatasetConfig, split_dir: Path | None,
                  declared: dict[str, str | None]) -> TrainConfig:
    train = copy.deepcopy(config.train)
    data = train.data
    for key in ("labels", "axis", "window", "percentiles", "channels"):
        if getattr(dataset, key) is not None:
            setattr(data, key, copy.copy(getattr(dataset, key)))
    train = apply_train_overrides(train, backbone.overrides, "backbone overrides")
    if train.strategy.method != method:  # the recipe's method options belong to its own method
        train.strategy.options = {}
    train = apply_train_overrides(train, config.per_method.get(method, []), "per_method overrides")
    train.model.name = backbone.model or ""
    train.model.checkpoint = _absolute((init.checkpoint if init else None) or backbone.checkpoint)
    if backbone.image_size is not None:
        train.model.image_size = backbone.image_size
    # config.components were checked against COMPONENTS when the study config loaded
    train.strategy.component, train.strategy.method = cast("Component", component), method
    try:  # refused before any cell runs, not when the cell trains
        get_method(method).load_options(train.strategy.options)
    except ConfigError as error:
        raise ConfigError(f"{method} cells: {error}") from None
    train.run.seed = seed
    data = train.data
    if split_dir is None:
        data.train, data.val = cast(str, _absolute(dataset.train)), _absolute(dataset.val)  # train: checked set
    else:
        data.train = str(split_dir / "train.csv")
        data.val = str(split_dir / "val.csv") if dataset.val or dataset.folds else None
        if data.labels is None:  # a split's list files no longer carry a dataset.json's labels
            if dataset.train not in declared:
                declared[dataset.train] = _declared_labels(dataset.train)
            data.labels = declared[dataset.train]
    return train


def expand_cells(config: StudyConfig, out_dir: str | Path) -> list[Cell]:
    """Every cell of the study, in run order (see the module docstring)."""
    from samtune.study.inits import init_setup, producer_dir

    # Rows carry their setup (1, 2, 3) when the inits axis compares setups.
    mixed_setups = len({init_setup(init) for init in (config.inits or {}).values()}) > 1
    out_dir = Path(out_dir).absolute()
    declared: dict[str, str | None] = {}
    cells: list[Cell] = []
    nnunet_ids: dict[str, int] = {}  # training source -> nnU-Net dataset id
    outer = product(config.seeds, config.datasets.items(), config.shots or [None], config.backbones)
    for seed, (dataset_name, dataset), shots, label in outer:
        backbone = config.backbone(label)
        for fold in range(dataset.folds) if dataset.folds else [None]:
            if fold is not None:  # the same folds for every seed: seeds vary the training only
                split_dir: Path | None = out_dir / "splits" / dataset_name / f"folds{dataset.folds}" / f"fold{fold}"
            else:
                split_dir = None if shots is None else out_dir / "splits" / dataset_name / f"shots{shots}_seed{seed}"
            inner: Iterable[tuple[tuple[str | None, InitConfig | None], str, str]] = product(
                inits_for(config, label), config.components, config.methods)
            if backbone.strategies:  # the backbone's own component/method pairs, in grid order
                inner = [(init, c, m) for init, c, m in inner if f"{c}/{m}" in backbone.strategies]
            engine = backbone.engine
            if engine or is_baseline(backbone.model or label):  # every weight trains from scratch: one cell
                inner = [((None, None), "encoder+decoder", "full")]
            for (init_name, init), component, method in inner:
                train = _train_config(config, backbone, init, component, method, seed, dataset, split_dir, declared)
                if init is not None and init_name is not None and (init.pretrain is not None or init.train is not None):
                    train.model.checkpoint = str(producer_dir(out_dir, init_name))  # made inside the study
                settings = None
                if engine:
                    from samtune.study.nnunet_study import ENGINE, nnunet_settings

                    train.model.name = ENGINE
                    score = cast(str, _absolute(dataset.test or dataset.val))  # val is required
                    # one training source: the config check refuses several for nnU-Net
                    settings = asdict(nnunet_settings(config, label, dataset_name, shots, seed, cast(str, train.data.train),
                                                      train.data.labels, score, "test" if dataset.test else "val",
                                                      nnunet_ids))
                cells.append(Cell(
                    cell_id(dataset_name, label, init_name, component, method, seed, shots, fold), label,
                    train.model.name, init_name, component, method, dataset_name, seed, shots, train, split_dir,
                    _absolute(dataset.test), fold, dataset.folds, settings,
                    init_setup(init) if mixed_setups else None,
                ))
    seen: set[str] = set()
    for cell in cells:
        if cell.cell_id in seen:
            raise ConfigError(
                f"two cells share the id '{cell.cell_id}'; avoid '__' in backbone, dataset and init labels"
            )
        seen.add(cell.cell_id)
    return cells
