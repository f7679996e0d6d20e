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
so a typo fails in a second, not hours into a study: `samtune.study.preflight.load_study`
reads and checks a study.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from samtune.configs import apply_overrides, from_dict
from samtune.engine.config import TrainConfig, check_values
from samtune.errors import ConfigError



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

