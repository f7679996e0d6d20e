"""Reading a run directory, checked once: `RunDir.open(path)`.

Each file a consumer needs is read and checked when first asked for, and any problem is
one line naming the file and what is wrong with it, e.g.
``RUN/weights/tuning.safetensors: not a safetensors file (header too large); the run may
be incomplete ...``. `RunDir.check()` reads everything predicting needs up front.

The typed view of config.yaml (`RunSettings`) holds what inference and evaluation need,
so they read a run without importing the training engine; the engine parses the whole
file into its `TrainConfig` from `RunDir.config_data()`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from samtune.errors import CheckpointError, UserError
from samtune.runs.base_weights import check_setup2_run, is_training_run, merged_weights
from samtune.runs.layout import RunLayout
from samtune.models.run_weights import resolve_checkpoint

INCOMPLETE = "the run may be incomplete: train it again, or pass another run directory"

# config.yaml keys every run has (train writes the full resolved configuration).
REQUIRED_KEYS = ("model.name", "strategy.method", "strategy.component", "task.mode", "run.seed")
# Flat strategy keys of runs written before methods took `strategy.options`.
LEGACY_OPTION_KEYS = ("rank", "alpha", "dropout", "blocks", "adapter_init")


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", list: "a list"}


class RunError(UserError):
    """A run directory file is missing or damaged."""


@dataclass(frozen=True)
class RunSettings:
    """What consumers of a trained run need from its config.yaml."""

    model: str
    checkpoint: str | None
    seed: int
    method: str
    component: str
    mode: str  # automatic | prompted
    prompt: str  # box | point | hybrid
    window: str | None
    percentiles: tuple[float, float] | None
    axis: int
    channels: tuple[int, ...] | None
    labels: str | None  # the data.labels spec the run was trained with
    other_labels: str  # data.other_labels: error | background, for values the labels do not name
    train: str  # a single source; "" when data.train lists several (see train_sources)
    val: str | None
    root: str | None
    # Every source of data.train / data.val as (path, labels spec or None): one entry for a
    # single source, several for a multi-source run (setup 2).
    train_sources: tuple[tuple[str, str | None], ...] = ()
    val_sources: tuple[tuple[str, str | None], ...] = ()


def _lookup(data: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def migrate_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """Move flat strategy options (rank: 4, ...) of older runs into strategy.options.

    Those runs saved every option with its default. Options their method does not take
    were unused then and are dropped; so are values equal to the method's defaults (alpha
    equal to rank is LoRA's default, alpha = None), so an old run's configuration compares
    equal to the same configuration written today (a study does not see it as changed).
    """
    strategy = data.get("strategy")
    if not isinstance(strategy, dict) or not any(k in strategy for k in LEGACY_OPTION_KEYS):
        return data
    from samtune.methods.registry import get_method

    method = get_method(str(strategy.get("method", "full")))
    options = dict(strategy.get("options") or {})
    flat = {key: strategy.pop(key) for key in LEGACY_OPTION_KEYS if key in strategy}
    for key, value in flat.items():
        default = method.defaults.get(key)
        if key == "alpha" and default is None and value == flat.get("rank", method.defaults.get("rank")):
            continue
        if key in method.options and key not in options and value != default:
            options[key] = value
    strategy["options"] = options
    return data


class RunDir(RunLayout):
    """A run directory read for its consumers (predict, eval, export, study, resume)."""

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """The run at `path`; a UserError if it is not a run directory at all."""
        run = cls(Path(path))
        if not run.path.is_dir():
            raise RunError(f"run directory {run.path} not found (or not a folder); pass the --out of `samtune train`")
        from samtune.models.run_weights import refuse_pretrain_run

        refuse_pretrain_run(run.path)  # an encoder-only pretrain run is not a segmentation model
        if not run.config_path.is_file():
            raise RunError(f"{run.path} is not a training run: it has no {run.config_path.name}; "
                           "pass the --out folder of `samtune train`")
        return run

    def fail(self, path: Path, problem: str) -> RunError:
        return RunError(f"{path}: {problem}; {INCOMPLETE}")

    # ------------------------------------------------------------ config.yaml
    @cached_property
    def _config(self) -> dict[str, Any]:
        import yaml

        path = self.config_path
        if not path.is_file():
            raise self.fail(path, "missing")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise self.fail(path, "not a text file") from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise self.fail(path, f"not valid YAML{where}") from None
        if not isinstance(data, dict):
            raise self.fail(path, "not a mapping of configuration sections")
        for key in REQUIRED_KEYS:
            found, _ = _lookup(data, key)
            if not found:
                raise self.fail(path, f"lacks '{key}'")
        return migrate_legacy(data)

    def config_data(self) -> dict[str, Any]:
        """config.yaml as a dict (a copy; legacy strategy options moved into strategy.options)."""
        import copy

        return copy.deepcopy(self._config)

    def _value(self, key: str, kinds: tuple[type, ...], default: Any = None) -> Any:
        found, value = _lookup(self._config, key)
        if not found or value is None:
            return default
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
            raise self.fail(self.config_path, f"'{key}' should be {names}, got {value!r}")
        return value

    def _numbers(self, key: str, kind: type) -> tuple | None:
        value = self._value(key, (list,))
        if value is None:
            return None
        if not all(isinstance(v, kind) or (kind is float and isinstance(v, int)) for v in value):
            raise self.fail(self.config_path, f"'{key}' should list {kind.__name__}s, got {value!r}")
        return tuple(value)

    @cached_property
    def settings(self) -> RunSettings:
        mode = self._value("task.mode", (str,))
        if mode not in ("automatic", "prompted"):
            raise self.fail(self.config_path, f"'task.mode' is {mode!r}, not automatic or prompted")
        return RunSettings(
            model=self._value("model.name", (str,)), checkpoint=self._value("model.checkpoint", (str,)),
            seed=self._value("run.seed", (int,)), method=self._value("strategy.method", (str,)),
            component=self._value("strategy.component", (str,)), mode=mode,
            prompt=self._value("task.prompt", (str,), "box"), window=self._value("data.window", (str,)),
            percentiles=self._numbers("data.percentiles", float), axis=self._value("data.axis", (int,), 0),
            channels=self._numbers("data.channels", int), labels=self._value("data.labels", (str,)),
            other_labels=self._value("data.other_labels", (str,), "error"),
            train=self._single("data.train") or "", val=self._single("data.val"),
            root=self._value("data.root", (str,)),
            train_sources=self._sources("data.train"), val_sources=self._sources("data.val"),
        )

    def _single(self, key: str) -> str | None:
        value = self._value(key, (str, list))
        return value if isinstance(value, str) else None

    def _sources(self, key: str) -> tuple[tuple[str, str | None], ...]:
        """data.train / data.val as (path, labels) pairs: a string, or a list of sources."""
        value = self._value(key, (str, list))
        if not value:
            return ()
        if isinstance(value, str):
            return ((value, None),)
        pairs = []
        for i, entry in enumerate(value):
            entry = {"path": entry} if isinstance(entry, str) else entry
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
                raise self.fail(self.config_path, f"'{key}[{i}]' should be a source with a path, got {entry!r}")
            labels = entry.get("labels")
            pairs.append((entry["path"], labels if isinstance(labels, str) else None))
        return tuple(pairs)

    # --------------------------------------------------------------- run.json
    @cached_property
    def info(self) -> dict[str, Any]:
        """run.json (labels, model overrides, versions, ...)."""
        path = self.info_path
        if not path.is_file():
            raise self.fail(path, "missing")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise self.fail(path, "not valid JSON") from None
        if not isinstance(data, dict):
            raise self.fail(path, "not a JSON object")
        return data

    @cached_property
    def labels(self) -> tuple[str, ...]:
        """Class names the run predicts (1..K; background is 0)."""
        labels = self.info.get("labels", ["foreground"])
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
            raise self.fail(self.info_path, f"'labels' should be a non-empty list of class names, got {labels!r}")
        return tuple(labels)

    # ---------------------------------------------------------------- weights
    @cached_property
    def record(self):
        """weights/tuning.json as a `samtune.methods.checkpoint.TuningRecord`."""
        from samtune.methods.checkpoint import RECORD_FILE, read_record

        path = self.weights_dir / RECORD_FILE
        if not path.is_file():
            raise self.fail(path, "missing (training has not saved weights yet)")
        try:
            record = read_record(self.weights_dir)
        except UserError as error:
            raise RunError(f"{str(error).rstrip('.')}; {INCOMPLETE}") from None
        settings = self.settings
        if record.strategy.method != settings.method or record.strategy.component != settings.component:
            raise self.fail(path, f"holds strategy {record.strategy.name}, but {self.config_path.name} says "
                                  f"{settings.component}/{settings.method}")
        return record

    @cached_property
    def tensors(self):
        """weights/tuning.safetensors, checked (readable, complete, finite)."""
        from samtune.methods.checkpoint import WEIGHTS_FILE
        from samtune.models.safetensors_check import read_checked

        path = self.weights_dir / WEIGHTS_FILE
        if not path.is_file():
            raise self.fail(path, "missing (training has not saved weights yet)")
        try:
            return read_checked(path)
        except ValueError as error:
            raise self.fail(path, str(error)) from None

    def base_checkpoint(self) -> Path | None:
        """The base weights file the run was tuned from (config's model.checkpoint), checked to
        exist; packaged weights and random test bases give None."""
        if self.settings.checkpoint is None:
            return None
        path = Path(self.settings.checkpoint)
        if path.is_dir():  # a `samtune pretrain` run (its export) or a setup-2 run (its merged weights)
            return resolve_base(path, self.settings.model)
        if not path.is_file():
            raise CheckpointError(
                f"base checkpoint {path} (model.checkpoint in {self.config_path}) not found: the run's weights hold "
                "only what training changed and need it; put the file back at that path"
            )
        return path

    def verify_base(self, checkpoint: Path | None) -> None:
        """The base weights loaded (`checkpoint`) are the ones the run was tuned from (sha256)."""
        expected = self.record.base.sha256
        if not expected or checkpoint is None:
            return
        from samtune.assets import sha256_of

        found = sha256_of(Path(checkpoint))
        if found != expected:
            raise CheckpointError(
                f"{checkpoint} has sha256 {found[:12]}..., but {self.weights_dir} was tuned from a base checkpoint "
                f"with sha256 {expected[:12]}...; put the original base checkpoint back"
            )

    def check(self) -> RunDir:
        """Read and check everything predicting with the run needs; return self."""
        _ = self.settings, self.labels, self.record, self.tensors
        self.base_checkpoint()
        if self.settings.mode == "automatic":
            outputs = self.record.base.overrides.get("num_multimask_outputs")
            if isinstance(outputs, int) and outputs != len(self.labels) + 1:
                raise self.fail(self.info_path, f"lists {len(self.labels)} class(es) but the weights predict "
                                                f"{outputs - 1}")
        return self

    def load_model(self, device: str = "cpu"):
        """The trained model, in eval mode on `device` (see `samtune.runs.model.load_model`)."""
        from samtune.runs.model import load_model

        return load_model(self, device)


def setup2_run(path: str | Path, model: str | None = None) -> RunDir:
    """The training run at `path`, checked usable as base weights (CheckpointError otherwise)."""
    return check_setup2_run(RunDir.open(path), model)


def resolve_base(path: str | Path | None, model: str | None = None) -> Path | None:
    """`model.checkpoint` as training loads it (`samtune.runs.base_weights`): a weights file as
    is; a pretrain run -> its export; a setup-2 run -> its merged weights."""
    if path is None:
        return None
    if is_training_run(path):
        return merged_weights(setup2_run(path, model), model)
    return resolve_checkpoint(path)
