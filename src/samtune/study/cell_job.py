"""Train and score one cell; what a study's worker process runs.

Each cell runs in its own process (`samtune.study.runner`), forked from a server that
has imported torch once: the peak memory in ``summary.json`` is then the cell's own, a
crash (out of memory, a segfault in a kernel) takes down one cell, not the study, and
every cell starts from fresh global state (threads, RNGs, allocator).
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

# The training and scoring stack, imported at module level so that the fork server holds
# it before forking: a cell then starts in milliseconds instead of re-importing torch.
import matplotlib
import torch._dynamo  # noqa: F401  (first imported by torch.optim: seconds per cell otherwise)

import samtune.engine.api  # noqa: F401
import samtune.inference.run_eval  # noqa: F401
from samtune.methods.registry import list_methods
from samtune.models.registry import list_models
from samtune.study.state import PEAK_GPU_FILE, describe_error

matplotlib.use("Agg")
import matplotlib.pyplot  # noqa: E402,F401  (training writes curves.png)

list_models(), list_methods()  # fill both registries in the server, not in every cell


def _train(job: dict[str, Any]) -> None:
    import torch

    from samtune.configs import from_dict
    from samtune.engine.api import train
    from samtune.engine.config import TrainConfig
    from samtune.runs import write_json

    run_dir = Path(job["run_dir"])
    if job["action"] == "resume":
        train(None, run_dir, resume=True)
    else:
        config = from_dict(TrainConfig, job["config"], "config")
        train(config, run_dir, overwrite=job["action"] == "restart")
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        write_json(run_dir / PEAK_GPU_FILE, {"peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)})


def _score(job: dict[str, Any]) -> None:
    from samtune.engine.distributed import resolve_device
    from samtune.inference.run_eval import evaluate_run

    score = job["score"]
    device = score["device"] if score["device"] != "auto" else job["config"]["run"]["device"]
    evaluate_run(
        job["run_dir"], Path(job["run_dir"]) / job["eval_dir"], data=job["score_source"],
        nsd_tolerance=score["nsd_tolerance"], both_empty=score["both_empty"], batch_size=score["batch_size"],
        device=str(resolve_device(device)), overwrite=True,
    )


def _use_slot(job: dict[str, Any]) -> None:
    """A local worker's device or CPU share (`samtune.study.executors.Slot`); run in the
    cell's own process, before CUDA initialises (it reads CUDA_VISIBLE_DEVICES once)."""
    import os

    import torch

    if job.get("gpu") is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(job["gpu"])
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))  # a cell's own run.threads still overrides this


def run_cell_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run ``job`` (from `runner.cell_job`): train unless ``action`` is ``score``, then score.

    Returns ``{"ok": True}`` or ``{"ok": False, "stage", "error", "traceback"}``; only
    KeyboardInterrupt propagates.
    """
    _use_slot(job)
    if job.get("engine"):  # nnU-Net v2 runs its own commands (samtune.study.nnunet_cell)
        from samtune.study.nnunet_cell import nnunet_score, nnunet_train

        train, score = nnunet_train, nnunet_score
    else:
        train, score = _train, _score
    stages = ([] if job["action"] == "score" else [("train", train)]) + [("score", score)]
    if job.get("init"):  # a setups-axis producer (samtune.study.inits): train or pretrain, no scoring
        from samtune.study.inits import run_producer_job

        stages = [("init", run_producer_job)]
    if job.get("train_only"):  # a DDP rank other than 0 (samtune.study.slurm): rank 0 scores
        stages = [stage for stage in stages if stage[0] == "train"]
    for stage, step in stages:
        try:
            step(job)
        except Exception as error:  # recorded per cell; the study goes on
            return {"ok": False, "stage": stage, "error": describe_error(error), "traceback": traceback.format_exc()}
    return {"ok": True}
