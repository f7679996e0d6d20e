"""The study's setups axis: starting weights made inside the study, once, for the cells that use them.

An entry of ``inits`` gives the weights its cells start from in one of four ways::

    inits:
      foundation: {}                                  # the backbone's own weights (setup 1)
      medsam: {checkpoint: medsam_vit_b.pth}          # a file (setup 1 unless `setup:` says otherwise)
      expansive: {checkpoint: runs/setup2}            # a finished prompted training run (setup 2)
      agnostic: {checkpoint: runs/mim}                # a `samtune pretrain` run (setup 3)
      made_expansive:                                 # a setup-2 run trained inside the study
        train: {task: {mode: prompted}, data: {train: [{path: a/}, {path: b/}]}, optim: {steps: 300}}
      made_agnostic:                                  # a pretrain run made inside the study
        pretrain: {data: {sources: [a/, b/]}, optim: {steps: 300}}

A ``train`` recipe is the shipped ``default`` training recipe with these values on top; a
``pretrain`` recipe is `PretrainConfig` with these values. In either, ``mni:t1``, ``mni:gm``
and ``mni:wm`` name the MNI152 volumes the install brings (`samtune.assets.mni_template`),
and a ``train`` recipe's source may list its cases instead of naming a list file:
``{cases: [[IMAGE, MASK], ...], labels: ...}`` (written as ``OUT/inits/<name>.sources/
train<i>.csv`` before the producer runs), e.g. the T1 template with its grey-matter map,
``{cases: [[mni:t1, mni:gm]], labels: "binary>=128"}``. Either takes the model, its
weights and input size from the one backbone the entry applies to (``backbones: [x]``, or
the study's only backbone): the entry's own ``model`` section may not set them.

Such a producer runs into ``OUT/inits/<name>/`` (an ordinary run directory) when the
first cell that needs it starts, on that cell's worker (`InitMaker`; the other workers
go on with their cells), exactly once: it is locked like a cell (`samtune.study.locks`,
lock ``init__<name>``), so a second worker or invocation waits for it instead of running
it again, and an interrupted producer resumes from its checkpoint on the next
invocation. Its cells name that folder as ``model.checkpoint`` (`samtune.runs.base_weights`
resolves it). When a producer fails, its cells are recorded as failed (stage ``init``).

``results.md`` labels each row by its setup: 1 = foundation weights, 2 = task-expansive
(prompted training on many labelled datasets first), 3 = task-agnostic (self-supervised
pretraining of the image encoder first).
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from samtune.configs import from_dict, load_yaml
from samtune.engine.config import TrainConfig
from samtune.engine.pretrain_config import PretrainConfig
from samtune.errors import ConfigError, UserError
from samtune.study.config import InitConfig, StudyConfig

SETUP_NAMES = {1: "foundation weights", 2: "task-expansive", 3: "task-agnostic"}
INIT_DIR = "inits"
LOCK_PREFIX = "init__"  # cell ids have at least five '__'-separated parts: no clash
POLL_S = 5.0  # how often a worker waiting for another's producer looks again


@dataclass
class Producer:
    """One init made inside the study: a setup-2 training run or a pretrain run."""

    name: str
    kind: str  # "train" (setup 2) or "pretrain" (setup 3)
    config: TrainConfig | PretrainConfig
    run_dir: Path
    case_lists: dict[Path, list[list[str]]] = field(default_factory=dict)  # list files to write first

    def write_case_lists(self) -> None:
        from samtune.atomic import atomic_path

        for path, rows in self.case_lists.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_text("image,mask\n" + "".join(f"{image},{mask}\n" for image, mask in rows), encoding="utf-8")

    @property
    def lock_id(self) -> str:
        return f"{LOCK_PREFIX}{self.name}"


def producer_dir(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir).absolute() / INIT_DIR / name


def init_setup(init: InitConfig | None) -> int:
    """The setup (1, 2 or 3) of an inits entry: as given, else from what it names."""
    if init is None:
        return 1
    if init.setup is not None:
        return init.setup
    if init.pretrain is not None:
        return 3
    if init.train is not None:
        return 2
    if init.checkpoint and Path(init.checkpoint).is_dir():
        from samtune.models.run_weights import is_pretrain_run

        return 3 if is_pretrain_run(init.checkpoint) else 2
    return 1


def setup_label(setup: int) -> str:
    return f"setup {setup} ({SETUP_NAMES[setup]})"


MNI_SCHEME = "mni:"


def _absolute(path: str) -> str:
    """An absolute path; ``mni:t1`` / ``mni:gm`` / ``mni:wm`` -> the installed MNI152 volume."""
    if path and path.startswith(MNI_SCHEME):
        from samtune.assets import mni_template

        try:
            return str(mni_template(path[len(MNI_SCHEME):]))
        except UserError as error:
            raise ConfigError(f"{path}: {error}") from None
    return str(Path(path).absolute()) if path else path


def _listed_cases(recipe: dict[str, Any], lists_dir: Path, where: str) -> dict[Path, list[list[str]]]:
    """Replace sources given as ``cases`` in a train recipe's data.train / data.val by list
    files in `lists_dir` (in place); the rows to write there."""
    lists: dict[Path, list[list[str]]] = {}
    for key in ("train", "val"):
        sources = (recipe.get("data") or {}).get(key)
        if not isinstance(sources, list):
            continue
        for i, entry in enumerate(sources):
            if not isinstance(entry, dict) or "cases" not in entry:
                continue
            cases = entry.pop("cases")
            if entry.get("path"):
                raise ConfigError(f"{where}.data.{key}[{i}]: give path or cases, not both")
            if not isinstance(cases, list) or not cases or not all(
                    isinstance(c, list) and len(c) == 2 and all(isinstance(p, str) for p in c) for c in cases):
                raise ConfigError(f"{where}.data.{key}[{i}].cases: give a list of [IMAGE, MASK] pairs")
            path = lists_dir / f"{key}{i}.csv"
            lists[path] = [[_absolute(image), _absolute(mask)] for image, mask in cases]
            entry["path"] = str(path)
    return lists


def _the_backbone(config: StudyConfig, name: str, init: InitConfig) -> str:
    labels = init.backbones if init.backbones is not None else list(config.backbones)
    if len(labels) != 1:
        raise ConfigError(f"inits.{name}: a {'pretrain' if init.pretrain is not None else 'train'} recipe makes "
                          f"weights for one model; give backbones: [ONE] (it applies to {', '.join(labels) or 'none'})")
    return labels[0]


def build_producer(config: StudyConfig, out_dir: str | Path, name: str, init: InitConfig) -> Producer:
    """The producer of an entry with a ``train`` or ``pretrain`` recipe (ConfigError naming a bad key)."""
    from samtune.engine.recipes import resolve_recipe
    from samtune.study.config import _merge

    where = f"inits.{name}"
    recipe = init.pretrain if init.pretrain is not None else init.train
    assert recipe is not None
    model_keys = set((recipe.get("model") or {}).keys()) & {"name", "checkpoint", "image_size"}
    if model_keys:
        raise ConfigError(f"{where}: model.{sorted(model_keys)[0]} comes from the backbone the entry applies to; "
                          "remove it")
    backbone = config.backbone(_the_backbone(config, name, init))
    lists: dict[Path, list[list[str]]] = {}
    if init.pretrain is not None:
        pretrain = from_dict(PretrainConfig, copy.deepcopy(recipe), f"{where}.pretrain")
        pretrain.data.sources = [_absolute(s) for s in pretrain.data.sources]
        made: TrainConfig | PretrainConfig = pretrain
        kind = "pretrain"
    else:
        recipe = copy.deepcopy(recipe)
        lists = _listed_cases(recipe, producer_dir(out_dir, name).parent / f"{name}.sources", f"{where}.train")
        data = _merge(load_yaml(resolve_recipe("default")), recipe)
        made = from_dict(TrainConfig, data, f"{where}.train")
        if made.task.mode != "prompted":
            raise ConfigError(f"{where}.train: a setup-2 model is trained with prompts; set task.mode: prompted")
        for key in ("train", "val"):
            value = getattr(made.data, key)
            if isinstance(value, str):
                setattr(made.data, key, _absolute(value))
            elif value:
                for source in value:
                    source.path = source.path if Path(source.path) in lists else _absolute(source.path)
        kind = "train"
    made.model.name = backbone.model or ""
    made.model.checkpoint = _absolute(backbone.checkpoint) if backbone.checkpoint else None
    made.model.image_size = backbone.image_size
    return Producer(name, kind, made, producer_dir(out_dir, name), lists)


def producers(config: StudyConfig, out_dir: str | Path) -> dict[str, Producer]:
    """Every inits entry made inside the study, by name."""
    return {name: build_producer(config, out_dir, name, init) for name, init in (config.inits or {}).items()
            if init is not None and (init.pretrain is not None or init.train is not None)}


def check_inits_entry(config: StudyConfig, name: str, init: InitConfig) -> None:
    """One entry: one way of giving weights, a known setup, a usable run folder, a valid recipe."""
    where = f"inits.{name}"
    given = [key for key in ("checkpoint", "pretrain", "train") if getattr(init, key)]
    if len(given) > 1:
        raise ConfigError(f"{where}: give one of checkpoint, pretrain or train, not {' and '.join(given)}")
    if init.setup is not None and init.setup not in SETUP_NAMES:
        raise ConfigError(f"{where}.setup: {init.setup} is not a setup; give 1, 2 or 3")
    if init.checkpoint and Path(init.checkpoint).is_dir():
        from samtune.runs.base_weights import is_training_run
        from samtune.runs.reading import setup2_run

        if is_training_run(init.checkpoint):
            try:
                setup2_run(init.checkpoint)  # finished, prompted, mergeable: checked, nothing written
            except UserError as error:
                raise ConfigError(f"{where}: {error}") from None
    if init.pretrain is not None or init.train is not None:
        made = build_producer(config, ".", name, init)
        if isinstance(made.config, PretrainConfig):
            sources = made.config.data.sources
            if not sources:
                raise ConfigError(f"{where}.pretrain.data.sources: give the unlabeled images to pretrain on")
        else:
            value = made.config.data.train
            sources = [value] if isinstance(value, str) else [s.path for s in value]
            listed = [path for rows in made.case_lists.values() for row in rows for path in row]
            sources = [s for s in sources if Path(s) not in made.case_lists] + listed
        for source in sources:
            if not source or not Path(source).exists():
                raise ConfigError(f"{where}: data source not found: {source}")


# ----------------------------------------------------------------------- running them
def producer_status(producer: Producer) -> str:
    """done | resume | new, or stale (its folder holds a run of another configuration)."""
    from samtune.runs.layout import RunLayout

    layout = RunLayout(producer.run_dir)
    if layout.is_empty():
        return "new"
    if layout.config_path.is_file():
        kind = PretrainConfig if producer.kind == "pretrain" else TrainConfig
        try:
            saved = from_dict(kind, load_yaml(layout.config_path), str(layout.config_path))
        except (UserError, OSError):
            saved = None
        if saved is not None and asdict(saved) != asdict(producer.config):
            return "stale"
    if layout.is_finished():
        return "done"
    return "resume" if layout.has_checkpoint() else "new"


def producer_job(producer: Producer, status: str) -> dict[str, Any]:
    """The picklable job `samtune.study.cell_job.run_cell_job` runs for a producer."""
    action = {"new": "restart", "resume": "resume"}[status]  # restart: a half-written folder is replaced
    return {"init": producer.kind, "run_dir": str(producer.run_dir), "config": asdict(producer.config),
            "action": action}


def run_producer_job(job: dict[str, Any]) -> None:
    """Train or pretrain the producer of `job` (in the cell's process)."""
    run_dir = Path(job["run_dir"])
    if job["init"] == "pretrain":
        from samtune.engine.pretrain import pretrain

        if job["action"] == "resume":
            pretrain(None, run_dir, resume=True)
        else:
            pretrain(from_dict(PretrainConfig, job["config"], "config"), run_dir, overwrite=True)
    else:
        from samtune.engine.api import train

        if job["action"] == "resume":
            train(None, run_dir, resume=True)
        else:
            train(from_dict(TrainConfig, job["config"], "config"), run_dir, overwrite=True)


def produce(producer: Producer, out_dir: Path, run: Callable[[dict[str, Any]], dict[str, Any]],
            log: Callable[[str], None], where: str = "", poll_s: float = POLL_S) -> dict[str, Any]:
    """Make `producer` unless done; wait while another worker holds it. The job's outcome dict."""
    from samtune.study.locks import CellLock, holder

    waited = False
    while True:
        status = producer_status(producer)
        if status == "stale":
            raise UserError(f"{producer.run_dir} holds a run of another configuration than inits.{producer.name}; "
                            "use another --out")
        if status == "done":
            return {"ok": True}
        lock = CellLock(out_dir, producer.lock_id, where=where)
        if lock.acquire():
            break
        if not waited:
            owner = holder(out_dir, producer.lock_id)
            log(f"inits.{producer.name}: being made by {owner.describe() if owner else 'another worker'}; waiting")
            waited = True
        time.sleep(poll_s)
    try:
        status = producer_status(producer)  # the other worker may have finished it meanwhile
        if status == "done":
            return {"ok": True}
        log(f"inits.{producer.name}: {'resuming' if status == 'resume' else 'making'} the setup "
            f"{3 if producer.kind == 'pretrain' else 2} weights in {producer.run_dir}")
        producer.write_case_lists()
        return run(producer_job(producer, status))
    finally:
        lock.release()


class InitMaker:
    """The inits (setup-2 / setup-3 producers) of one study invocation, made on demand by
    whichever worker first runs a cell that starts from one (`ensure`), while the other
    workers go on with other cells: both cores (or GPUs) stay busy while weights are made.

    A worker that needs an init another worker is making waits for it (`produce`); an
    init that failed is not tried again in this invocation, and its cells fail at stage
    ``init`` with its error.
    """

    def __init__(self, config: StudyConfig, out_dir: Path, log: Callable[[str], None]):
        self.out_dir, self.log = out_dir, log
        self.made = producers(config, out_dir)
        self.failed: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def ensure(self, name: str | None, slot: Any, run_job: Callable[[dict[str, Any]], dict[str, Any]]
               ) -> dict[str, Any]:
        """``{"ok": True}`` once init `name` exists (made here if needed), else the failure."""
        producer = self.made.get(name or "")
        if producer is None:  # the foundation weights, or an init naming existing weights
            return {"ok": True}
        with self.lock:
            if producer.name in self.failed:
                return self.failed[producer.name]

        def run(job: dict[str, Any]) -> dict[str, Any]:
            job.update(gpu=slot.gpu, threads=slot.threads)
            return run_job(job)

        result = produce(producer, self.out_dir, run, self.log, slot.where)
        if not result["ok"]:
            with self.lock:
                if producer.name not in self.failed:
                    self.log(f"  -> inits.{producer.name} failed: {result['error']}")
                    self.failed[producer.name] = result
        return result
