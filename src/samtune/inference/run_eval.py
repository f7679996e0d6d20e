"""Evaluate a training run on a labelled data source: predict every case, score it.

This is the library call behind ``samtune eval --run RUN_DIR --data SOURCE``. Every case
is read, predicted whole (volumes slice by slice across the run's axis and restacked, no
slice dropped, whether or not it holds foreground) and scored against its ground truth
with `samtune.evaluation` (per case and class, 3D metrics for volumes, using the ground
truth's spacing). Cases are streamed: one case's image, labels and prediction in memory at
a time.

Prompted runs get their prompts from the ground truth, as in the study's evaluation
protocol: on every 2D slice (or image), for every class present there, one prompt for the
whole class (all of its pixels, not per connected component): a tight box (the min/max
pixel indices of the class, no jitter) for box runs; for point runs 5 positive points
drawn from the innermost 10 % of the class's pixels with a generator seeded by (seed, case
position, slice index); hybrid runs get both. Slices without a class get no prompt and
predict nothing for it, so prompted scores cannot show false positives on such slices.
Where two classes' masks overlap, the pixel goes to the class with the larger logit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence, cast

import numpy as np
import torch

from samtune.data.case_io import read_case, select_channels
from samtune.data.geometry import LoadedImage
from samtune.data.labels import LabelMap, parse_label_spec, require_integer_labels
from samtune.data.prompts import PromptConfig, PromptKind, prompts_from_mask
from samtune.data.sources import Case, Source, load_source
from samtune.errors import DataError, UserError
from samtune.evaluation.accumulator import MetricAccumulator
from samtune.evaluation.evaluate import EvalCase, evaluate_cases, report_paths, write_report
from samtune.evaluation.folders import distance_unit
from samtune.evaluation.metrics import DEFAULT_NSD_TOLERANCE_MM, BothEmpty
from samtune.inference.predictor import Predictor
from samtune.inference.volume import batches, encode_batch_size
from samtune.outputs import check_outputs_in
from samtune.runs import RunDir, RunSettings

if TYPE_CHECKING:
    from samtune.inference.ensemble import Ensemble

SPLITS = ("train", "val")
PROMPT_PROTOCOL = "ground truth: one prompt per class per slice, tight box / 5 inner points (see samtune.inference.run_eval)"


@dataclass
class RunEvaluation:
    """What `evaluate_run` scored and wrote."""

    accumulator: MetricAccumulator
    table: str
    per_case_path: Path
    summary_path: Path
    source: str


def resolve_source(config: RunSettings, data: str | Path | None, split: str | None) -> tuple[Source, str]:
    """The labelled source to evaluate on, and a description of where it came from.

    - ``data`` a split folder (``train.csv`` / ``val.csv`` from `samtune data split`): its
      ``{split}.csv`` (default val);
    - ``data`` any other source (list file, nnU-Net folder, images/+masks/): all its
      labelled cases (``split`` is refused: it would mean nothing);
    - no ``data``: the run's own ``data.{split}`` from its config.yaml (default val).
    """
    if split is not None and split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got '{split}'")
    if data is None:
        chosen = split or "val"
        path = config.val if chosen == "val" else config.train
        if not path:
            raise UserError(f"the run was trained without data.{chosen}; give the cases with --data SOURCE")
        return load_source(path, root=config.root), f"{path} (the run's data.{chosen})"
    data = Path(data)
    if data.is_dir() and (data / f"{split or 'val'}.csv").is_file() and (data / "split.json").is_file():
        listed = data / f"{split or 'val'}.csv"
        return load_source(listed), str(listed)
    if split is not None:
        raise UserError(
            f"--split {split} applies to a split folder (train.csv, val.csv, split.json from "
            f"`samtune data split`) or to the run's own data; {data} is a plain source: drop --split"
        )
    return load_source(data), str(data)


def run_sources(config: RunSettings, split: str | None) -> tuple[list[Case], list[LabelMap], str] | None:
    """The run's own data.{split} when it lists several sources (a multi-source, setup-2 run):
    every case, each case's label map (its source's labels, else data.labels, else the
    source's declared or binary ones, as training read them), and a description; None for
    a run with a single source."""
    chosen = split or "val"
    pairs = config.val_sources if chosen == "val" else config.train_sources
    if len(pairs) < 2 and not any(labels for _, labels in pairs):
        return None
    cases: list[Case] = []
    case_labels: list[LabelMap] = []
    for number, (path, spec) in enumerate(pairs):
        source = load_source(path, root=config.root)
        labels = run_label_map(config, source, spec)
        for case in source.cases:  # case ids are unique per source only
            cases.append(replace(case, case_id=f"{number}:{case.case_id}"))
            case_labels.append(labels)
    return cases, case_labels, f"{', '.join(path for path, _ in pairs)} (the run's data.{chosen}, {len(pairs)} sources)"


def run_label_map(config: RunSettings, source: Source, spec: str | None = None) -> LabelMap:
    """Stored ground-truth values -> the run's classes: ``spec``, else the run's
    data.labels, else the source's declared labels, else binary."""
    text = spec or config.labels
    labels = parse_label_spec(text) if text else (source.labels or LabelMap.binary())
    # The run's rule for values its labels do not name (data.other_labels), as in training.
    return labels if labels.is_binary else labels.with_others(config.other_labels)


def ground_truth_prompt_config(kind: str) -> PromptConfig:
    """The evaluation protocol's prompts (module docstring): whole class, tight box."""
    # `kind` is a run's prompt kind, checked when its config was loaded.
    return replace(PromptConfig.study(cast(PromptKind, kind)), per="class", max_regions=None, box_jitter=0.0)


@torch.inference_mode()
def predict_from_ground_truth(
    predictor: Predictor,
    image: LoadedImage,
    classes: np.ndarray,
    axis: int = 0,
    batch_size: int | None = None,
    seed: Sequence[int] = (0,),
) -> np.ndarray:
    """Labels of a 2D image or a volume, prompted per slice and class from ``classes``.

    Args:
        predictor: a prompted `Predictor`.
        image: the image / volume (channels last if any), with its geometry.
        classes: ground-truth class map 0..K of the image's spatial shape.
        axis: slicing axis for volumes.
        batch_size: slices per encoder forward (slices without foreground are not encoded);
            None: 1 on the CPU, 8 on a GPU.
        seed: generator seed prefix for point prompts (the slice index is appended).
    """
    config = ground_truth_prompt_config(predictor.prompt_kind)
    spatial = image.spatial_ndim
    array, gt = (image.array[None], classes[None]) if spatial == 2 else (
        np.moveaxis(image.array, axis, 0), np.moveaxis(classes, axis, 0))
    value_range = predictor.value_range(image.array)
    labels = np.zeros(classes.shape, dtype=np.uint8)
    out = labels[None] if spatial == 2 else np.moveaxis(labels, axis, 0)
    with_foreground = [i for i in range(gt.shape[0]) if gt[i].any()]
    if batch_size is None:
        batch_size = encode_batch_size(predictor)
    for chunk in batches(len(with_foreground), batch_size):
        indices = [with_foreground[j] for j in chunk]
        embeddings, frames = predictor.encode_images([array[i] for i in indices], value_range)
        for position, index in enumerate(indices):
            prompts = prompts_from_mask(gt[index], config, np.random.default_rng([*seed, index]))
            logits = torch.stack([
                predictor.prompt_logits(
                    embeddings[position : position + 1], frames[position],
                    prompts.boxes[n] if prompts.boxes is not None else None,
                    prompts.points[n] if prompts.points is not None else None,
                    prompts.point_labels[n] if prompts.point_labels is not None else None,
                )
                for n in range(len(prompts))
            ])
            best, which = logits.max(dim=0)
            class_ids = torch.as_tensor(prompts.class_ids)[which]
            out[index] = torch.where(best > 0, class_ids, 0).numpy().astype(np.uint8)
    return labels


def _eval_cases(predictor: Predictor | Ensemble, cases: Sequence[Case], labels: LabelMap | Sequence[LabelMap],
                channels: tuple[int, ...] | None, batch_size: int | None, collapse: bool = False) -> Iterator[EvalCase]:
    """Predicted and true labels per case; `labels` is one map or one per case. With `collapse`
    (a prompted multi-source run, whose one class is "target") every class is prompted on its
    own, then prediction and truth count as foreground wherever any class is."""
    for position, case in enumerate(cases):
        data = read_case(case)
        assert data.mask is not None
        where = str(case.mask)
        case_labels = labels if isinstance(labels, LabelMap) else labels[position]
        require_integer_labels(data.mask, case_labels, where)
        gt = case_labels.apply(data.mask, where)
        image = LoadedImage(select_channels(data, channels), data.geometry, case.images[0])
        if predictor.mode == "automatic":
            if data.spatial_ndim == 3:
                pred = predictor.predict_volume(image, axis=predictor.axis, batch_size=batch_size).array
            else:
                pred = predictor.predict_image(image.array)
        else:
            assert isinstance(predictor, Predictor)  # ensembles are automatic
            pred = predict_from_ground_truth(predictor, image, gt, predictor.axis, batch_size, seed=(0, position))
        if not isinstance(predictor, Predictor):  # an ensemble: its disagreement on this case
            predictor.qc_rows.append({"case": case.case_id, "disagreement": f"{predictor.last_disagreement:.6f}",
                                      "variants": predictor.variants, "output": None})
        if pred.shape != gt.shape:  # a bug, never a user error: evaluation must not drop slices
            raise AssertionError(f"{case.case_id}: prediction {pred.shape} vs ground truth {gt.shape}")
        if collapse:
            pred, gt = (pred > 0).astype(np.uint8), (gt > 0).astype(np.uint8)
        yield EvalCase(case.case_id, pred, gt, spacing=data.geometry.array_spacing)


def evaluate_run(
    run_dir: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    data: str | Path | None = None,
    split: str | None = None,
    label_spec: str | None = None,
    classes: Sequence[int] | None = None,
    nsd_tolerance: float = DEFAULT_NSD_TOLERANCE_MM,
    both_empty: BothEmpty = "perfect",
    batch_size: int | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    backend: str = "torch",
    precision: str = "fp32",
    tta: str | None = None,
) -> RunEvaluation:
    """Predict and score every labelled case of a source with a run; write the reports.

    Writes ``per_case.csv`` and ``summary.json`` into ``out_dir`` (atomically; existing
    reports need ``overwrite``). ``classes`` restricts scoring to some of the run's classes
    (default: all of them, 1..K, so a class missing from a case counts by ``both_empty``).

    ``run_dir`` may be a list of runs, scored as their ensemble (`samtune.inference.ensemble`;
    ``tta`` adds mirrored inputs); the data defaults then come from the first run, and a
    ``qc.csv`` (`samtune.inference.qc`) is written beside the reports.

    ``backend``/``precision`` (see `samtune.inference.backends.with_backend`) default to torch
    fp32, the same numerics on every machine, which study cells score with; ``samtune eval
    --run`` passes its ``--backend``/``--precision`` (both ``auto``: the fastest path here).
    """
    ensemble_runs = None if isinstance(run_dir, (str, Path)) else [Path(r) for r in run_dir]
    run_dir, out_dir = (ensemble_runs[0] if ensemble_runs else Path(cast("str | Path", run_dir))), Path(out_dir)
    names = [path.name for path in report_paths(out_dir)] + (["qc.csv"] if ensemble_runs else [])
    check_outputs_in(out_dir, names, overwrite)
    run = RunDir.open(run_dir)
    if ensemble_runs or tta:
        from samtune.inference.ensemble import Ensemble

        predictor: Predictor | Ensemble = Ensemble.from_runs(ensemble_runs or [run_dir], device=device, tta=tta)
    else:
        predictor = Predictor.from_run(run, device=device)  # checks the run's files first
        predictor = predictor.with_backend(backend, precision, str(run_dir))  # torch | onnxruntime (issue 16)
    config = run.settings
    multi = run_sources(config, split) if data is None and label_spec is None else None
    collapse = False
    if multi is not None:  # a multi-source run scored on its own sources, each with its labels
        cases, case_labels, described = multi
        collapse = predictor.mode == "prompted"
        labels = LabelMap.binary(predictor.class_names[0]) if collapse else case_labels[0]
        label_arg: LabelMap | list[LabelMap] = case_labels
    else:
        source, described = resolve_source(config, data, split)
        cases = source.cases
        labels = label_arg = run_label_map(config, source, label_spec)
    if labels.num_classes != len(predictor.class_names):
        raise UserError(
            f"{run_dir} predicts {len(predictor.class_names)} class(es) ({', '.join(predictor.class_names)}) but "
            f"the labels of {described} give {labels.num_classes} ({labels.describe()}); pass --label-map"
        )
    unlabelled = [case.case_id for case in cases if case.mask is None]
    if unlabelled or not cases:
        raise DataError(f"{described}: every case needs a mask to be scored; without one: {unlabelled[:5] or 'all'}")
    scored = list(classes) if classes else list(range(1, labels.num_classes + 1))
    unknown = [c for c in scored if not 1 <= c <= labels.num_classes]
    if unknown:
        raise UserError(f"--classes {unknown}: the run has classes 1..{labels.num_classes}")
    class_names = dict(enumerate(predictor.class_names, start=1))
    # Cases are read with the run's channels already selected (select_channels).
    selected = replace(predictor, channels=None)
    accumulator = evaluate_cases(
        _eval_cases(selected, cases, label_arg, predictor.channels, batch_size, collapse), classes=scored,
        nsd_tolerance=nsd_tolerance, both_empty=both_empty, class_names=class_names,
        distance_unit=distance_unit([c.mask for c in cases if c.mask is not None]),  # all have one (above)
    )
    extra = {
        "run": str(run_dir), "data": described, "mode": predictor.mode, "axis": predictor.axis,
        "labels": labels.describe(),
        "prompts": PROMPT_PROTOCOL.replace("ground truth", f"ground truth ({predictor.prompt_kind})")
        if isinstance(predictor, Predictor) and predictor.mode == "prompted" else None,
    }
    if ensemble_runs or tta:
        extra.update(runs=[str(r) for r in (ensemble_runs or [run_dir])], tta=tta)
    table = write_report(accumulator, out_dir, extra)
    if not isinstance(selected, Predictor):  # an ensemble (runs or --tta)
        from samtune.inference.qc import write_qc_csv

        write_qc_csv(selected.qc_rows, out_dir / "qc.csv")
    per_case_path, summary_path = report_paths(out_dir)
    return RunEvaluation(accumulator, table, per_case_path, summary_path, described)
