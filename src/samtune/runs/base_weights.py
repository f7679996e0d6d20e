"""`model.checkpoint` as training loads it: a weights file, a pretrain run or a setup-2 run.

Setup 2 of the study (task-expansive) first trains the foundation model with prompts on
many labelled datasets, then fine-tunes that model on the target task. The first stage is
an ordinary prompted `samtune train` run; naming its directory as ``model.checkpoint``
starts from its merged weights: the base model with the run's tuned tensors applied and
LoRA/DoRA folded in, written once into the run as ``weights/merged.safetensors`` (official
key layout). The file records the sha256 of the ``tuning.safetensors`` it was made from
and is made again when that changes; merging is deterministic, so a re-made file has the
same bytes and a run tuned from it still verifies its base (`RunDir.verify_base`).

Refused, each with one line and nothing written: a run that has not finished, an
automatic run (its decoder predicts fixed classes, not prompted masks), a run of another
model, and adapter runs (adapters add modules the official layout has no keys for).

`samtune.runs.reading` opens the run (`setup2_run`) and resolves ``model.checkpoint``
(`resolve_base`); this module checks and merges an opened run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from samtune.errors import CheckpointError, UserError
from samtune.models.run_weights import is_pretrain_run
from samtune.runs.layout import RunLayout

if TYPE_CHECKING:  # runs are opened by `samtune.runs.reading` (setup2_run, resolve_base): annotations only here
    from samtune.runs.reading import RunDir

MERGED_FILE = "merged.safetensors"  # in the run's weights/
_SOURCE_KEY = "samtune.tuning_sha256"  # safetensors metadata: which tuned tensors were merged


def is_training_run(path: str | Path) -> bool:
    """A `samtune train` run directory (config.yaml, not a pretrain run)."""
    path = Path(path)
    return path.is_dir() and not is_pretrain_run(path) and RunLayout(path).config_path.is_file()


def check_setup2_run(run: RunDir, model: str | None = None) -> RunDir:
    """`run` (opened with `RunDir.open`), checked usable as base weights (CheckpointError otherwise)."""
    where = f"model.checkpoint {run.path}"
    if not run.is_finished():
        raise CheckpointError(f"{where} is a training run that has not finished (no {run.summary_path.name}); "
                              f"finish it first: samtune train --resume {run.path}")
    try:
        settings = run.settings
        _ = run.record, run.tensors
    except UserError as error:
        raise CheckpointError(f"{where}: {error}") from None
    if settings.mode != "prompted":
        raise CheckpointError(f"{where} is an automatic run (its decoder predicts {', '.join(run.labels)}); "
                              "setup-2 starting points are prompted runs: train one with task.mode=prompted")
    if model is not None and settings.model != model:
        raise CheckpointError(f"{where} is a {settings.model} run, but model.name is {model}; "
                              f"set model.name={settings.model} or give weights of {model}")
    if settings.method == "adapter" or run.record.strategy.method == "adapter":
        raise CheckpointError(f"{where} was tuned with adapters, which cannot be folded into official-layout "
                              "weights; use a full, LoRA or DoRA run as a setup-2 starting point")
    return run


def merged_weights(run: RunDir, model: str | None = None) -> Path:
    """The merged weights file of `run` (opened), written on first use (see the module notes)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from samtune.assets import sha256_of
    from samtune.atomic import atomic_path
    from samtune.methods.checkpoint import WEIGHTS_FILE
    from samtune.methods.merging import export_merged

    run = check_setup2_run(run, model)
    target = run.weights_dir / MERGED_FILE
    source_sha = sha256_of(run.weights_dir / WEIGHTS_FILE)
    if target.is_file():
        try:
            with safe_open(str(target), framework="pt") as handle:
                if (handle.metadata() or {}).get(_SOURCE_KEY) == source_sha:
                    return target
        except Exception:  # damaged or foreign: made again below
            pass
    try:
        state = export_merged(run.load_model("cpu"))
    except UserError as error:
        raise CheckpointError(f"model.checkpoint {run.path}: {error}") from None
    state = {key: value.contiguous() for key, value in state.items()}
    try:
        with atomic_path(target) as tmp:
            save_file(state, str(tmp), metadata={_SOURCE_KEY: source_sha, "format": "samtune.merged"})
    except OSError as error:
        raise CheckpointError(f"cannot write {target} ({error.strerror}); export the run with "
                              f"samtune export {run.path} --merge --out FILE.pth and give that file") from None
    return target

