"""`samtune predict` with an ensemble, TTA or probability maps: labels, probabilities, qc.csv.

The same inputs, label files and overlays as `samtune.inference.predict_files`, plus:

- with ``probabilities``: per class k = 1..K of the runs, ``NAME_prob_<k>.nii.gz``
  (float32 probabilities in [0, 1] with the source's spacing, origin and direction) for
  volumes and files with geometry, or ``NAME_prob_<k>.png`` (16-bit: round(p x 65535))
  for 2D photo formats. Background is 1 minus their sum.
- always: ``qc.csv``, one row per input (`samtune.inference.qc`): the disagreement of the
  ensemble members / TTA variants, their count, the predicted IoU (empty: not trained
  in fine-tuned runs) and the label file. Sort by disagreement to review the worst first.

Every output is checked (free, or ``overwrite``) before any model runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from samtune.data.readers import read_image, write_image
from samtune.errors import UserError
from samtune.inference.ensemble import Ensemble
from samtune.inference.montage import montage
from samtune.inference.overlay import overlay, save_png
from samtune.inference.predict_files import PlannedOutput, PredictOptions, Written, plan_outputs, prompt_for
from samtune.inference.qc import write_qc_csv
from samtune.outputs import check_output_file

QC_FILE = "qc.csv"
PNG_SCALE = 65535  # 16-bit PNG probabilities: value / 65535


def probability_paths(plan: PlannedOutput, classes: int) -> list[Path]:
    """``NAME_prob_<k>`` for k = 1..classes, beside the label file."""
    suffix = ".nii.gz" if plan.keeps_geometry else ".png"
    return [plan.labels.parent / f"{plan.name}_prob_{k}{suffix}" for k in range(1, classes + 1)]


def check_outputs(inputs: Sequence[str | Path], options: PredictOptions, classes: int,
                  probabilities: bool) -> list[PlannedOutput]:
    """`plan_outputs` plus the probability maps and qc.csv, all refused if present (no overwrite)."""
    plans = plan_outputs(inputs, options)
    targets = [options.out_dir / QC_FILE]
    if probabilities:
        targets += [path for plan in plans for path in probability_paths(plan, classes)]
    for target in targets:
        check_output_file(target, options.overwrite, flag="--out")
    return plans


def predict_files_ensemble(ensemble: Ensemble, inputs: Sequence[str | Path], options: PredictOptions,
                           probabilities: bool = False) -> Iterator[Written]:
    """Predict each input with ``ensemble``; write labels, overlays, probabilities; qc.csv at the end."""
    classes = len(ensemble.class_names)
    plans = check_outputs(inputs, options, classes, probabilities)
    prompted = [p.source.name for p in plans if prompt_for(p, options) is not None]
    if prompted:
        raise UserError(f"ensembles and --tta segment automatically (no prompts), but prompts were given for "
                        f"{', '.join(prompted[:3])}; drop --box/--point/--slice/--prompts")
    axis = ensemble.axis if options.axis is None else options.axis
    rows = []
    try:
        for plan in plans:
            image = read_image(plan.source)
            case = ensemble.predict_case(image, axis=axis, batch_size=options.batch_size, probabilities=probabilities)
            labels = case.labels
            write_image(plan.labels, labels.array, labels.geometry if plan.keeps_geometry else None)
            if probabilities and case.probabilities is not None:
                for k, path in enumerate(probability_paths(plan, classes), start=1):
                    maps = case.probabilities[k]
                    if plan.keeps_geometry:
                        write_image(path, maps.astype(np.float32), labels.geometry)
                    else:
                        write_image(path, np.round(np.clip(maps, 0, 1) * PNG_SCALE).astype(np.uint16))
            if plan.picture is not None:
                picture = (overlay(image.array, labels.array) if image.spatial_ndim == 2
                           else montage(image.array, labels.array, axis=axis))
                save_png(picture, plan.picture)
            rows.append({"case": plan.name, "disagreement": f"{case.disagreement:.6f}", "variants": case.variants,
                         "predicted_iou": None, "output": plan.labels.name})
            counts = np.bincount(labels.array.ravel(), minlength=classes + 1)[1:]
            found = ", ".join(f"{name} {int(n)}" for name, n in zip(ensemble.class_names, counts))
            yield Written(plan, f"{plan.source} -> {plan.labels} ({case.variants} variant(s), disagreement "
                                f"{case.disagreement:.4f}; labelled pixels: {found})")
    finally:
        if rows:
            write_qc_csv(rows, options.out_dir / QC_FILE)
