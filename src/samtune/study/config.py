"""The study configuration: one training recipe crossed with grid axes, loaded strictly.

A study YAML names a base training recipe, overrides some of its values, and lists the
axes of the grid::

    title: Prostate, 5 shots       # heading of results.md (optional)
    base: default                  # a shipped training recipe or a YAML path (optional)
    train:                         # TrainConfig values on top of the base (same keys)
      optim: {steps: 100}
    backbones:                     # label -> registered model (+ weights, input size)
      lite_medsam: {}
      sam_vit_b_256: {model: sam_vit_b, image_size: 256, checkpoint: sam_vit_b_01ec64.pth}
    components: [decoder, encoder+decoder]
    methods: [full, adapter, lora]
    per_method:                    # training values per method (`--set` syntax)
      full: [optim.lr=0.0001]
    datasets:                      # label -> sources (any kind `samtune data` accepts)
      prostate: {train: train.csv, val: val.csv}
    seeds: [0, 1, 2]
    shots: [1, 3, null]            # optional few-shot sizes; null = all training cases
    inits:                         # optional initial-weights axis
      medsam: {checkpoint: medsam_vit_b.pth, backbones: [sam_vit_b_256]}

A cell's training configuration is `train`, then the dataset's values, then the
backbone's and the method's ``overrides``, then the cell's own axes (model, weights,
strategy, seed, sources), which nothing else may set.

`--set` overrides address any key: ``--set train.optim.steps=20``,
``--set backbones.sam_vit_b.checkpoint=PATH``, ``--set seeds=[0,1]``. Mappings are
replaced or extended key by key, lists as a whole.

Every name is checked before anything runs (unknown model or method, a backbone whose
weights must be supplied but are not, a checkpoint or data source that does not exist),
so a typo fails in a second, not hours into a study.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from samtune.configs import apply_overrides, from_dict, load_yaml
from samtune.engine.config import TrainConfig, check_data_values, check_image_size, check_values
from samtune.errors import ConfigError, UserError

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _study_components() -> list[str]:
    from samtune.methods.strategy import COMPONENTS

    return list(COMPONENTS)


def _study_methods() -> list[str]:
    from samtune.methods.strategy import STUDY_METHODS

    return list(STUDY_METHODS)


@dataclass
class BackboneConfig:
    """One entry of the backbone axis.

    model: registered model name (`samtune models`); None = the entry's label.
    checkpoint: weights file; required for models without packaged weights.
    image_size: input size for ViT backbones (e.g. 256 or 512); None = native.
    """

    model: str | None = None
    checkpoint: str | None = None
    image_size: int | None = None
    overrides: list[str] = field(default_factory=list)
    strategies: list[str] | None = None  # "component/method" pairs instead of components x methods
    # engine: nnunetv2 runs nnU-Net v2's own planning, training and prediction for this
    # entry (`samtune.study.nnunet_study`), with its configuration, a trainer class it
    # ships (e.g. nnUNetTrainer_1epoch) and its fold (0-4, or "all": every training case)
    engine: str | None = None
    configuration: str = "2d"
    trainer: str = "nnUNetTrainer"
    fold: int | str = 0


@dataclass
class DatasetConfig:
    """One entry of the dataset axis; None fields keep the `train.data` value.

    train: training source (list file, nnU-Net folder, images/+masks/ folder).
    val: validation source: selects the best checkpoint during training, and is the
        source scored when `test` is not given.
    test: optional held-out source to score (never seen during training).
    folds: k-fold cross-validation of `train` by patient (`samtune.data.folds`): one cell
        per fold, validated on its held-out fold; `val` is then not used.
    """

    train: str = ""
    val: str | None = None
    test: str | None = None
    labels: str | None = None
    axis: int | None = None
    window: str | None = None
    percentiles: list[float] | None = None
    channels: list[int] | None = None
    folds: int | None = None


@dataclass
class InitConfig:
    """One entry of the initial-weights axis (the study's setups; see `samtune.study.inits`).

    checkpoint: weights file, `samtune pretrain` run or finished prompted training run
        loaded instead of the backbone's own weights (None = its own).
    backbones: backbone labels it applies to (None = every backbone).
    setup: 1, 2 or 3 for results.md; None: from what the entry names.
    pretrain: a pretrain recipe (`PretrainConfig` values) run once inside the study (setup 3).
    train: a prompted training recipe (values on the `default` recipe) run once inside the
        study (setup 2).
    """

    checkpoint: str | None = None
    backbones: list[str] | None = None
    setup: int | None = None
    pretrain: dict[str, Any] | None = None
    train: dict[str, Any] | None = None


@dataclass
class ScoreConfig:
    """How each finished cell is scored (see `samtune eval --run`)."""

    nsd_tolerance: float = 2.0  # mm (pixels for PNG sources)
    both_empty: Literal["perfect", "nan"] = "perfect"
    batch_size: int | None = None  # slices per forward; None: 1 on the CPU, 8 on a GPU
    device: str = "auto"  # auto: the training device


@dataclass
class ExecutorConfig:
    """Resources of `--executor slurm` (`samtune.study.slurm`), one job per cell in an array.

    cluster: ``slurm``, or ``local`` for submitit's local executor (real subprocesses on
        this machine, no scheduler: for tests and for trying a set-up).
    gpus_per_node: GPUs of one cell; above 1 the cell trains with DDP, one task per GPU.
    timeout_min: wall-time limit of one job; a job that reaches it (or is preempted) is
        requeued up to ``max_requeues`` times and resumes from its run's checkpoint.
    array_parallelism: at most this many cells run at once.
    additional: further ``#SBATCH`` options, e.g. ``{exclude: node12}``.
    setup: shell lines run before each job (``module load cuda``, ``source .venv/bin/activate``).
    """

    cluster: Literal["slurm", "local"] = "slurm"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: float = 32.0
    timeout_min: int = 720
    array_parallelism: int = 64
    max_requeues: int = 3
    additional: dict[str, str] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)


@dataclass
class StudyConfig:
    title: str | None = None  # heading of results.md
    base: str | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    backbones: dict[str, BackboneConfig | None] = field(default_factory=dict)
    components: list[str] = field(default_factory=_study_components)  # default: both
    methods: list[str] = field(default_factory=_study_methods)  # default: full, adapter, lora
    datasets: dict[str, DatasetConfig] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    shots: list[int | None] | None = None
    inits: dict[str, InitConfig | None] | None = None
    per_method: dict[str, list[str]] = field(default_factory=dict)  # method -> training overrides
    score: ScoreConfig = field(default_factory=ScoreConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)  # --executor slurm only

    def backbone(self, label: str) -> BackboneConfig:
        """The entry of `label` with `model` filled in."""
        entry = copy.copy(self.backbones[label] or BackboneConfig())
        entry.model = entry.model or label
        return entry


def study_recipe_dir() -> Path:
    return Path(str(resources.files("samtune") / "recipes" / "studies"))


def resolve_study(name_or_path: str | Path) -> Path:
    """A study YAML path as given, else a shipped study name such as 'cpu_prostate'."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = study_recipe_dir() / f"{str(name_or_path).removesuffix('.yaml')}.yaml"
    if shipped.is_file():
        return shipped
    names = sorted(p.stem for p in study_recipe_dir().glob("*.yaml"))
    raise ConfigError(f"study not found: {name_or_path} (not a file, nor a shipped study: {', '.join(names)})")


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


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


AXIS_KEYS = ("model.name", "model.checkpoint", "model.image_size", "strategy.component", "strategy.method",
             "run.seed", "data.train", "data.val", "data.root")


def apply_train_overrides(train: TrainConfig, overrides: list[str], where: str) -> TrainConfig:
    """`train` with `--set`-style overrides applied, strictly (unknown keys are errors)."""
    if not overrides:
        return train
    return from_dict(TrainConfig, apply_overrides(asdict(train), list(overrides)), where)


def check_overrides(train: TrainConfig, overrides: list[str], where: str) -> None:
    for text in overrides:
        key = text.split("=", 1)[0].strip()
        if key in AXIS_KEYS:
            raise ConfigError(f"{where}: '{key}' is set by the study's axes (backbones, methods, seeds, datasets)")
    check_values(apply_train_overrides(train, overrides, where), f"{where}: ")


def inits_for(config: StudyConfig, backbone: str) -> list[tuple[str | None, InitConfig | None]]:
    """(init label, entry) pairs of a backbone; [(None, None)] without an inits axis."""
    if not config.inits:
        return [(None, None)]
    return [(name, init) for name, init in config.inits.items()
            if init is None or init.backbones is None or backbone in init.backbones]

