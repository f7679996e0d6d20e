"""Run one nnU-Net v2 cell of a study: export, plan, train, predict with nnU-Net's own
commands, then score its predictions with samtune's evaluation.

The two stages mirror a samtune cell's (`samtune.study.cell_job`): ``nnunet_train``
(export the training source, plan and preprocess it once per source and configuration,
train; an interrupted training continues with nnU-Net's ``--c``) and ``nnunet_score``
(export the images to predict once per source, predict, score). Scoring reads the
ground truth exactly as `samtune eval --run` does (`read_case`, the label map applied)
and goes through the same `evaluate_cases`, so the Dice of an nnU-Net row and of a SAM
row of the results table are the same computation. The file layout is described in
`samtune.study.nnunet_study`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from samtune.data.nnunet_export import FILE_ENDING
from samtune.errors import DataError, UserError
from samtune.runs import write_json
from samtune.runs.layout import RunLayout
from samtune.study.nnunet_engine import (
    NnunetFolders,
    fold_folder,
    load_checkpoint,
    plan_and_preprocess,
    predict_command,
    run_command,
    train_command,
)
from samtune.study.nnunet_study import (
    ITERATIONS_PER_EPOCH,
    PREDICTIONS_DIR,
    SETTINGS_FILE,
    NnunetCell,
    trainer_epochs,
)

LOG_FILE = "nnunet.log"  # every nnU-Net command of the cell with its output
PROGRESS_FILE = "nnunet_progress.json"  # training seconds so far (kept across resumes)


def _folders(job: dict[str, Any]) -> NnunetFolders:
    work = Path(job["out_dir"]) / "nnunet"
    return NnunetFolders(work / "nnUNet_raw", work / "nnUNet_preprocessed", Path(job["run_dir"]) / "nnUNet_results")


def _device(settings: NnunetCell) -> str:
    if settings.device != "auto":
        return "cuda" if settings.device.startswith("cuda") else settings.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _prepare(settings: NnunetCell, folders: NnunetFolders, log: Path) -> None:
    """Export the training source and have nnU-Net plan and preprocess it (once per source
    and configuration: a marker file records a finished preprocessing)."""
    from samtune.data.nnunet_export import export_nnunet

    export = export_nnunet(settings.train_source, settings.dataset_id, settings.dataset_name, folders.raw,
                           labels=settings.labels)
    marker = folders.preprocessed / settings.folder_name / f".samtune-{settings.configuration}.done"
    if not marker.is_file():
        work = folders.raw.parent
        plan_and_preprocess(export.folder, work, settings.configuration, log=log.with_name("nnunet_plan.log"))
        marker.write_text("nnUNetv2_plan_and_preprocess finished\n", encoding="utf-8")


def _checkpoint_summary(checkpoint: Path) -> dict[str, Any]:
    """Parameters, iterations and nnU-Net's own best validation pseudo-Dice from its checkpoint
    (read with weights_only; figures it cannot give stay None)."""
    try:
        saved = load_checkpoint(checkpoint)
    except Exception:  # a format this nnU-Net version does not keep plain: no figures, no failure
        return {}
    weights = saved.get("network_weights") or {}
    # nnU-Net's decoder keeps a reference to its encoder, so the state dict lists the encoder's
    # tensors twice (encoder.* and decoder.encoder.*): count each stored tensor once
    unique = {(t.untyped_storage().data_ptr(), t.storage_offset(), t.numel()): t.numel()
              for k, t in weights.items() if hasattr(t, "numel") and "running_" not in k
              and not k.endswith("num_batches_tracked")}
    count = int(sum(unique.values()))
    epochs = saved.get("current_epoch")
    best = saved.get("_best_ema")
    return {"trainable_parameters": count or None, "total_parameters": count or None,
            "steps": int(epochs) * ITERATIONS_PER_EPOCH if epochs is not None else None,
            "best_val_dice": float(best) if best is not None else None}


def nnunet_train(job: dict[str, Any]) -> None:
    """Export, plan, preprocess and train (continued with --c when a checkpoint exists)."""
    settings = NnunetCell(**job["engine"])
    run_dir = Path(job["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / SETTINGS_FILE, job["engine"])
    folders = _folders(job)
    log = run_dir / LOG_FILE
    _prepare(settings, folders, log)
    trained = fold_folder(folders, settings.folder_name, settings.configuration, settings.fold, settings.trainer)
    progress_path = run_dir / PROGRESS_FILE
    progress = json.loads(progress_path.read_text(encoding="utf-8")) if progress_path.is_file() else {}
    if not (trained / "checkpoint_final.pth").is_file():
        started = time.monotonic()
        resume = (trained / "checkpoint_latest.pth").is_file()
        command = train_command(settings.dataset_id, settings.configuration, settings.fold, settings.trainer,
                                _device(settings), resume)
        try:
            run_command(command, folders, log, "training")
        finally:  # an interrupted training's time counts when it resumes
            progress["train_seconds"] = progress.get("train_seconds", 0.0) + time.monotonic() - started
            write_json(progress_path, progress)
    summary = {"engine": "nnunetv2", "trainer": settings.trainer, "configuration": settings.configuration,
               "fold": settings.fold, "epochs": trainer_epochs(settings.trainer),
               "train_seconds": round(progress.get("train_seconds", 0.0), 1), "peak_rss_mb": None,
               **_checkpoint_summary(trained / "checkpoint_final.pth")}
    write_json(RunLayout(run_dir).summary_path, summary)


def _scoring_source(settings: NnunetCell) -> Any:
    from samtune.data.sources import load_source

    source = load_source(settings.score_source)
    unlabelled = [case.case_id for case in source.cases if case.mask is None]
    if unlabelled or not source.cases:
        raise DataError(f"{settings.score_source}: every case needs a mask to be scored; without one: "
                        f"{unlabelled[:5] or 'all'}")
    ids = [case.case_id for case in source.cases]
    if len(set(ids)) != len(ids):
        raise DataError(f"{settings.score_source}: case names repeat; nnU-Net names predictions by case")
    return source


def export_inputs(settings: NnunetCell, work: Path) -> Path:
    """The images of the scored source as nnU-Net input files (``CASE_0000.nii.gz``), once per
    source: ``work/inputs/<dataset>-<val|test>/``, written beside and renamed into place."""
    from samtune.data.case_io import read_case
    from samtune.data.nnunet_export import write_nifti

    target = work / "inputs" / settings.score_key
    stamp = {"source": settings.score_source}
    if (target / "source.json").is_file() and json.loads((target / "source.json").read_text()) == stamp:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{settings.score_key}-", dir=target.parent))
    try:
        for case in _scoring_source(settings).cases:
            data = read_case(case)
            image = data.image if data.image.ndim > data.spatial_ndim else data.image[..., None]
            for k in range(image.shape[-1]):
                write_nifti(image[..., k], data.geometry, temporary / f"{case.case_id}_{k:04d}{FILE_ENDING}")
        (temporary / "source.json").write_text(json.dumps(stamp) + "\n", encoding="utf-8")
        if target.exists():  # an export of another source under the same name (a changed study)
            shutil.rmtree(target)
        temporary.rename(target)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
    return target


def read_prediction(path: Path) -> np.ndarray:
    """An nnU-Net prediction file as a label array in samtune's array order."""
    import SimpleITK as sitk

    if not path.is_file():
        raise DataError(f"nnU-Net wrote no prediction {path}; see {path.parent.parent / LOG_FILE}")
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.uint8)


def score_predictions(settings: NnunetCell, predictions: Path, out_dir: Path, score: dict[str, Any]) -> Any:
    """Score nnU-Net's prediction files against the source's masks the way `samtune eval --run`
    scores a run: same reading, same label map, same accumulator; writes out_dir/per_case.csv
    and summary.json. Returns the accumulator."""
    from samtune.data.case_io import read_case
    from samtune.data.labels import LabelMap, parse_label_spec, require_integer_labels
    from samtune.evaluation.evaluate import EvalCase, evaluate_cases, write_report
    from samtune.evaluation.folders import distance_unit

    source = _scoring_source(settings)
    labels = parse_label_spec(settings.labels) if settings.labels else (source.labels or LabelMap.binary())
    labels = labels if labels.is_binary else labels.with_others(settings.other_labels)  # as run_label_map

    def cases() -> Iterator[EvalCase]:
        for case in source.cases:
            data = read_case(case)
            where = str(case.mask)
            if data.mask is None:
                raise DataError(f"{case.image}: no mask to score the nnU-Net prediction against; give every case a mask")
            require_integer_labels(data.mask, labels, where)
            gt = labels.apply(data.mask, where)
            pred = read_prediction(predictions / f"{case.case_id}{FILE_ENDING}")
            if pred.shape != gt.shape:
                raise UserError(f"nnU-Net's prediction of {case.case_id} has shape {pred.shape}, its mask "
                                f"{gt.shape}; see {predictions.parent / LOG_FILE}")
            yield EvalCase(case.case_id, pred, gt, spacing=data.geometry.array_spacing)

    classes = list(range(1, labels.num_classes + 1))
    accumulator = evaluate_cases(
        cases(), classes=classes, nsd_tolerance=score["nsd_tolerance"], both_empty=score["both_empty"],
        class_names=dict(enumerate(labels.classes, start=1)),
        distance_unit=distance_unit([Path(c.mask) for c in source.cases]),
    )
    write_report(accumulator, out_dir, {"engine": "nnunetv2", "data": settings.score_source,
                                        "mode": "automatic", "labels": labels.describe(),
                                        "predictions": str(predictions)})
    return accumulator


def nnunet_score(job: dict[str, Any]) -> None:
    """Predict the scored source with the trained model (resuming a partial prediction), score it."""
    settings = NnunetCell(**job["engine"])
    run_dir = Path(job["run_dir"])
    folders = _folders(job)
    inputs = export_inputs(settings, folders.raw.parent)
    predictions = run_dir / PREDICTIONS_DIR
    command = predict_command(inputs, predictions, settings.dataset_id, settings.configuration, settings.fold,
                              settings.trainer, _device(settings))
    run_command(command, folders, run_dir / LOG_FILE, "prediction")
    score_predictions(settings, predictions, run_dir / job["eval_dir"], job["score"])
