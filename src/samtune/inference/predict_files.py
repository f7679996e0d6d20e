"""Predict image and volume files into an output folder: the library call behind
`samtune predict`.

Outputs per input, named after it (file name without its extension, or the DICOM folder's
name), in the output folder:

- ``NAME.png`` for 2D photo formats (PNG/JPEG/BMP/TIFF): 8-bit labels holding the class
  values (0 = background, k = class k of the run; prompted predictions are 0/1), so they
  look almost black in a viewer: use ``--overlay`` to look at them;
- ``NAME.nii.gz`` for volumes and 2D files that carry geometry (NIfTI, NRRD, MHA, DICOM):
  uint8 labels with the source's spacing, origin and direction;
- with ``overlay``: ``overlays/NAME_overlay.png`` (2D) or ``overlays/NAME_montage.png``
  (volumes: a grid of overlaid slices), in a subfolder so that `samtune eval --pred` on
  the output folder finds label files only.

Every file is written atomically; existing outputs are refused, before anything is
predicted, unless ``overwrite``. Automatic runs take no prompt; prompted models need one
per input (a volume also needs the slice it is on, where propagation starts).
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from samtune.data.geometry import LoadedImage
from samtune.data.readers import extension_of, format_for, read_image, write_image
from samtune.errors import DataError, UserError
from samtune.evaluation.folders import PICTURES_FOLDER
from samtune.inference.montage import montage
from samtune.inference.comparison import Panel, comparison_figure
from samtune.inference.overlay import save_png
from samtune.inference.predictor import Predictor
from samtune.inference.prompt_file import InputPrompt
from samtune.inference.prompted import check_prompts
from samtune.inference.propagation import PropagationConfig
from samtune.inference.volume import pick_channels, slice_axis
from samtune.outputs import check_output_file, check_outputs_in


@dataclass
class PredictOptions:
    """How `predict_files` runs.

    Attributes:
        out_dir: output folder (created).
        prompt: prompt for inputs without an entry in ``prompts`` (from --box/--point/--slice).
        prompts: per-input prompts keyed by input name (see `samtune.inference.prompt_file`).
        axis: slicing axis for volumes; None: the run's training axis (0 for --model).
        batch_size: slices per encoder forward (automatic volumes, propagation look-ahead);
            None: 1 on the CPU, 8 on a GPU.
        overlay: also write overlay / montage PNGs.
        overwrite: replace existing outputs.
        propagation: how prompted volumes are propagated (None: the defaults).
        refine_with: automatic runs: a prompted predictor that re-segments each class by
            propagation from the slice where the automatic prediction is largest (`refine`).
        label_file: instead of ``out_dir``, for one input: its label file (``.png`` for a
            2D image, a volume format such as ``.nii.gz`` for a volume).
        picture_file: with ``label_file``: the overlay / montage PNG (None: no picture).
    """

    out_dir: Path
    label_file: Path | None = None
    picture_file: Path | None = None
    prompt: InputPrompt | None = None
    prompts: dict[str, InputPrompt] = field(default_factory=dict)
    axis: int | None = None
    batch_size: int | None = None
    overlay: bool = False
    overwrite: bool = False
    propagation: PropagationConfig | None = None
    refine_with: Predictor | None = None


@dataclass(frozen=True)
class PlannedOutput:
    """One input and the files it will produce."""

    source: Path
    name: str
    labels: Path
    picture: Path | None  # overlay (2D) or montage (volume) PNG
    keeps_geometry: bool


@dataclass(frozen=True)
class Written:
    """What was written for one input, and a one-line description."""

    plan: PlannedOutput
    description: str


def input_name(path: Path) -> str:
    """Case name of an input: file name without its image extension, or the folder's name."""
    if path.is_dir():
        return path.name
    return path.name[: len(path.name) - len(extension_of(path.name))]


def plan_outputs(inputs: Sequence[str | Path], options: PredictOptions) -> list[PlannedOutput]:
    """Check every input (exists, known format, unique name) and output (free, or overwrite)."""
    if not inputs:
        raise UserError("give at least one input image, volume or DICOM folder")
    if options.label_file is not None:
        return [_plan_label_file(inputs, options)]
    plans: list[PlannedOutput] = []
    seen: dict[str, Path] = {}  # output name -> input
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise DataError(f"input not found: {path}")
        keeps = True if path.is_dir() else format_for(path).keeps_geometry  # unknown type: clear error
        name = input_name(path)
        if name in seen:
            raise UserError(f"inputs {seen[name]} and {path} would both write '{name}'; rename one or predict them separately")
        seen[name] = path
        labels = options.out_dir / (name + (".nii.gz" if keeps else ".png"))
        picture = (options.out_dir / PICTURES_FOLDER / f"{name}_{'montage' if keeps else 'overlay'}.png"
                   if options.overlay else None)
        plans.append(PlannedOutput(path, name, labels, picture, keeps))
    names = [target.name for plan in plans for target in (plan.labels, plan.picture) if target is not None]
    check_outputs_in(options.out_dir, names, options.overwrite)
    return plans


def _plan_label_file(inputs: Sequence[str | Path], options: PredictOptions) -> PlannedOutput:
    """The one input's plan when its label file is named (``options.label_file``)."""
    label = Path(options.label_file)  # type: ignore[arg-type]
    if len(inputs) != 1:
        raise UserError(f"--out-file {label} names one label file but {len(inputs)} inputs were given; "
                        "use --out DIR for several")
    path = Path(inputs[0])
    if not path.exists():
        raise DataError(f"input not found: {path}")
    keeps = True if path.is_dir() else format_for(path).keeps_geometry  # unknown type: clear error
    try:
        fits = format_for(label).keeps_geometry if keeps else extension_of(label.name) == ".png"
    except UserError:
        fits = False
    if not fits:
        kind, wanted = ("a volume or an image with geometry", ".nii.gz") if keeps else ("a 2D image", ".png")
        raise UserError(f"--out-file {label}: {path.name} is {kind}, so its labels are written as {wanted}; "
                        f"give a file name ending in {wanted}")
    check_output_file(label, options.overwrite, flag="--out-file")
    picture = options.picture_file
    if picture is not None:
        check_output_file(picture, options.overwrite, flag="--overlay-file")
        if Path(picture).absolute() == label.absolute():
            raise UserError(f"--out-file and --overlay-file are both {label}; give the overlay another name")
    return PlannedOutput(path, input_name(path), label, Path(picture) if picture is not None else None, keeps)


def prompt_for(plan: PlannedOutput, options: PredictOptions) -> InputPrompt | None:
    """The input's own entry in the prompts file (by full name or case name), else the default."""
    for key in (plan.source.name, plan.name, str(plan.source)):
        if key in options.prompts:
            return options.prompts[key]
    return options.prompt


def unmatched_prompt_names(plans: Sequence[PlannedOutput], options: PredictOptions) -> list[str]:
    """Entries of the prompts file that name no input (likely typos)."""
    known = {key for plan in plans for key in (plan.source.name, plan.name, str(plan.source))}
    return sorted(set(options.prompts) - known)


def _check_mode(predictor: Predictor, plans: Sequence[PlannedOutput], options: PredictOptions) -> None:
    if predictor.mode == "automatic":
        prompted = [p.source.name for p in plans if prompt_for(p, options) is not None]
        if prompted:
            raise UserError(
                f"this run segments automatically (no prompts) but prompts were given for {', '.join(prompted[:3])}; "
                "drop --box/--point/--slice/--prompts"
            )
        return
    for plan in plans:
        prompt = prompt_for(plan, options)
        if prompt is None or prompt.is_empty:
            raise UserError(
                f"{plan.source}: this model needs a prompt: give --box X0 Y0 X1 Y1 and/or --point X Y, "
                "or an entry for it in --prompts prompts.json"
            )


def check_inputs(predictor: Predictor | None, plans: Sequence[PlannedOutput], options: PredictOptions) -> None:
    """Read every input and check its prompt against its shape, before any output is written.

    ``predictor`` None: a zero-shot model, before it loads (axis 0 unless given, all channels).

    A corrupt, unreadable or mis-prompted input among many then fails the command with
    nothing written, instead of after the outputs of the inputs before it. Each input is
    read twice (here and when predicted); reading is a small part of predicting it.
    """
    axis = (predictor.axis if predictor is not None else 0) if options.axis is None else options.axis
    for plan in plans:
        image = read_image(plan.source)
        prompt = prompt_for(plan, options)
        if image.spatial_ndim == 2:
            if prompt is not None and prompt.slice is not None:
                raise UserError(f"{plan.source} is a 2D image; a slice index applies to volumes only")
            pick_channels(image, predictor.channels if predictor is not None else None)
            if prompt is not None:
                check_prompts(image.spatial_shape, prompt.box, list(prompt.points or []))
            continue
        checked = slice_axis(image, axis)
        if prompt is None:
            continue
        if prompt.slice is None:
            raise UserError(
                f"{plan.source} is a volume of shape {image.spatial_shape}: say which slice the prompt is on "
                "with --slice K (or \"slice\" in the prompts file)"
            )
        if not 0 <= prompt.slice < image.spatial_shape[checked]:
            raise UserError(f"{plan.source}: slice {prompt.slice} is outside the volume of shape "
                            f"{image.spatial_shape} along axis {checked}; give 0..{image.spatial_shape[checked] - 1}")
        plane = tuple(size for i, size in enumerate(image.spatial_shape) if i != checked)
        try:
            check_prompts(plane, prompt.box, list(prompt.points or []))
        except UserError as error:
            raise UserError(f"{plan.source}, slice {prompt.slice}: {error}") from None


def _predict_2d(predictor: Predictor, image: LoadedImage, prompt: InputPrompt | None, plan: PlannedOutput,
                refine_with: Predictor | None = None):
    if prompt is not None and prompt.slice is not None:
        raise UserError(f"{plan.source} is a 2D image; a slice index applies to volumes only")
    image = pick_channels(image, predictor.channels)
    if prompt is None:
        labels = predictor.predict_image(image.array)
        if refine_with is None:
            return labels
        from samtune.inference.refine import refine

        # a 2D image is a one-slice volume: the prompted model re-segments each class from its box
        return refine(refine_with, image.array[None], labels[None])[0].labels.array[0]
    check_prompts(image.spatial_shape, prompt.box, list(prompt.points or []))
    return predictor.predict_image(image.array, box=prompt.box, points=prompt.points, point_labels=prompt.point_labels)


def _predict_volume(predictor: Predictor, image: LoadedImage, prompt: InputPrompt | None, plan: PlannedOutput,
                    axis: int, options: PredictOptions) -> tuple[LoadedImage, str]:
    batch_size = options.batch_size
    config = replace(options.propagation or PropagationConfig(), batch_size=batch_size)
    if prompt is None:
        labels = predictor.predict_volume(image, axis=axis, batch_size=batch_size)
        if options.refine_with is None:
            return labels, f"{image.spatial_shape[axis]} slices"
        from samtune.inference.refine import refine

        result, starts = refine(options.refine_with, image, labels, axis=axis, config=config)
        where = ", ".join(f"class {s.label} from slice {s.slice} over {result.extents[s.label][0]}.."
                          f"{result.extents[s.label][1]}" for s in starts if s.label in result.extents)
        return result.labels, f"{image.spatial_shape[axis]} slices, refined by propagation: {where}"
    if prompt.slice is None:
        raise UserError(
            f"{plan.source} is a volume of shape {image.spatial_shape}: say which slice the prompt is on "
            "with --slice K (or \"slice\" in the prompts file)"
        )
    result = predictor.propagate(image, prompt.slice, box=prompt.box, axis=axis, points=prompt.points,
                                 point_labels=prompt.point_labels, config=config)
    return result.labels, f"propagated from slice {result.start} over slices {result.first}..{result.last}"


def _read_ahead(paths: Sequence[Path]) -> Iterator[LoadedImage]:
    """`read_image` of each path, the next one read in a thread while the caller predicts this one.

    The encoders release the GIL, so reading overlaps compute (issue 16); a read error still
    surfaces when its input's turn comes. At most two inputs are held at once.
    """
    context = contextvars.copy_context()  # reading settings such as skip_bad_dicom travel to the thread

    def read(path: Path) -> LoadedImage:
        return context.copy().run(read_image, path)

    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(read, paths[0]) if paths else None
        for position in range(len(paths)):
            assert pending is not None  # submitted for every position before the last
            image = pending.result()
            pending = reader.submit(read, paths[position + 1]) if position + 1 < len(paths) else None
            yield image


def predict_files(predictor: Predictor, inputs: Sequence[str | Path], options: PredictOptions) -> Iterator[Written]:
    """Predict each input and write its outputs (module docstring); yields as each finishes."""
    plans = plan_outputs(inputs, options)
    _check_mode(predictor, plans, options)
    check_inputs(predictor, plans, options)
    axis = predictor.axis if options.axis is None else options.axis
    for plan, image in zip(plans, _read_ahead([plan.source for plan in plans])):
        prompt = prompt_for(plan, options)
        if image.spatial_ndim == 2:
            labels = LoadedImage(_predict_2d(predictor, image, prompt, plan, options.refine_with), image.geometry, plan.source)
            what = f"{image.spatial_shape[1]}x{image.spatial_shape[0]} image"
        else:
            labels, what = _predict_volume(predictor, image, prompt, plan, axis, options)
        write_image(plan.labels, labels.array, labels.geometry if plan.keeps_geometry else None)
        if plan.picture is not None and image.spatial_ndim == 2:  # titled, prompt drawn, class legend
            points = [tuple(p) for p, k in zip(prompt.points or [], prompt.point_labels or [1] * 99) if k == 1] \
                if prompt is not None else []
            comparison_figure(image.array, [Panel("prediction", labels.array)], plan.picture,
                              box=prompt.box if prompt is not None else None, points=points,
                              class_name=list(predictor.class_names), title=plan.source.name)
        elif plan.picture is not None:
            save_png(montage(image.array, labels.array, axis=axis, geometry=image.geometry,
                             mark=prompt.slice if prompt is not None else None), plan.picture)
        counts = np.bincount(labels.array.ravel(), minlength=len(predictor.class_names) + 1)[1:]
        found = ", ".join(f"{name} {int(n)}" for name, n in zip(predictor.class_names, counts))
        yield Written(plan, f"{plan.source} -> {plan.labels} ({what}; labelled pixels: {found})")
