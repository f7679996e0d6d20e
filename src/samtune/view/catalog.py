"""What `samtune view PATH` shows: a catalog of cases (image, ground truth, prediction, metrics).

PATH may be:

- an evaluation folder (``per_case.csv`` + ``summary.json`` from ``samtune eval``), or a
  run directory holding one in ``eval/``. ``eval --pred P --gt G`` folders name P and G in
  their summary; the images are found with ``--images DIR`` or, by default, in the
  ground truth's sibling ``imagesTr`` / ``images`` folder (nnU-Net ``CASE_0000`` names
  accepted). ``eval --run RUN --data SOURCE`` folders name the source, which gives image
  and ground truth per case, and the run (used for prompting when it is prompted).
- a study folder (``samtune study`` output) with ``--cell ID``: that cell's ``eval/``;
- a ``samtune predict`` output folder with ``--images DIR`` (its inputs), optionally
  ``--gt DIR``;
- a folder of images (optionally ``--gt DIR``), or one image / volume file (optionally
  ``--gt FILE``).

Every file the page can serve is a catalog entry; `Catalog.roots` are the folders it was
opened on (PATH and those named by options or by the evaluation summary), and every entry
must resolve inside one of them: the server takes case names from requests, never paths.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samtune.data.readers import extension_of, is_image_path
from samtune.errors import UserError

CASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
METRIC_COLUMNS = ("dice", "hd95", "nsd")


@dataclass
class ViewCase:
    """One case of the page. Paths are absolute; metrics are means over the case's classes."""

    name: str
    image: Path
    gt: Path | None = None
    pred: Path | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)  # dice, hd95, nsd, qc...
    per_class: list[dict[str, object]] = field(default_factory=list)

    def files(self) -> list[Path]:
        return [p for p in (self.image, self.gt, self.pred) if p is not None]


@dataclass
class Catalog:
    """The cases of one `samtune view` session and the folders they may come from."""

    cases: dict[str, ViewCase]
    roots: list[Path]
    kind: str  # "eval", "predict", "images", "file"
    run: Path | None = None  # the run an evaluation folder names (for prompting)
    unmatched: list[str] = field(default_factory=list)  # predictions / scored cases without an image

    def case(self, name: str) -> ViewCase:
        """The case called `name`; KeyError for anything else (the server answers 404)."""
        if not CASE_NAME.match(name or "") or name not in self.cases:
            raise KeyError(name)
        return self.cases[name]


def case_name(path: Path) -> str:
    """File name without its image extension (as `samtune eval` names cases): case_01.nii.gz -> case_01.

    Written here, not imported from samtune.evaluation, so that opening the page needs no torch.
    """
    name = Path(path).name
    return name[: len(name) - len(extension_of(name))]


def _number(text: Any) -> float | None:  # a CSV cell, or None where the row lacks the column
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_per_case(path: Path) -> dict[str, tuple[dict[str, float | None], list[dict[str, object]]]]:
    """per_case.csv -> {case: (mean metrics over classes, per-class rows)}; extra numeric columns
    whose name starts with ``qc`` are kept (a quality-control score where one was written)."""
    rows_by_case: dict[str, list[dict[str, str]]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows_by_case.setdefault(row.get("case", ""), []).append(row)
    result = {}
    for case, rows in rows_by_case.items():
        columns = [c for c in rows[0] if c in METRIC_COLUMNS or c.lower().startswith("qc")]
        means: dict[str, float | None] = {}
        for column in columns:
            values = [v for v in (_number(r.get(column)) for r in rows) if v is not None]
            means[column] = sum(values) / len(values) if values else None
        per_class: list[dict[str, object]] = [{"class": r.get("class"), "name": r.get("name", ""),
                      **{c: _number(r.get(c)) for c in columns}} for r in rows]
        result[case] = (means, per_class)
    return result


def _index(folder: Path) -> dict[str, Path]:
    """Image files of a folder by case name."""
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not (entry.is_file() and is_image_path(entry)):
            continue
        found.setdefault(case_name(entry), entry)
    return found


def _image_for(images: dict[str, Path], name: str) -> Path | None:
    """The image of case `name`: NAME.ext, or nnU-Net's first channel NAME_0000.ext."""
    return images.get(name) or images.get(f"{name}_0000")


def _folder(path: str | Path | None, flag: str) -> Path | None:
    if path is None:
        return None
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{flag} {path} is not a folder; give the folder of image files")
    return path.resolve()


def _located(text: str, folder: Path) -> Path:
    """A path an evaluation summary names: as written (absolute, or relative to where eval ran, if
    that is here), else relative to the folder holding the eval folder."""
    path = Path(text)
    if path.is_absolute() or path.exists():
        return path.resolve()
    return (folder.parent / path).resolve()


def _guess_images(gt_dir: Path) -> Path | None:
    for name in ("imagesTr", "images", "imagesTs"):
        candidate = gt_dir.parent / name
        if candidate.is_dir() and candidate != gt_dir:
            return candidate
    return None


def _eval_catalog(folder: Path, images: Path | None) -> Catalog:
    summary_path = folder / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {summary_path}: {error}; re-run samtune eval") from None
    metrics = read_per_case(folder / "per_case.csv")
    roots = [folder]
    run = None
    cases: dict[str, ViewCase] = {}
    if summary.get("data") and summary.get("run"):
        from samtune.data.sources import load_source

        # "data" is the description run_eval wrote: "PATH" or "PATH (the run's data.val)"
        data_path = _located(str(summary["data"]).split(" (the run's")[0], folder)
        source = load_source(data_path)
        roots.append((data_path if data_path.is_dir() else data_path.parent).resolve())
        if source.root is not None:
            roots.append(Path(source.root).resolve())
        run = _located(summary["run"], folder)
        for c in source.cases:
            if c.case_id in metrics and c.images and c.images[0].is_file():
                cases[c.case_id] = ViewCase(c.case_id, c.images[0].resolve(), c.mask.resolve() if c.mask else None)
        missing = sorted(set(metrics) - set(cases))
    elif summary.get("pred_dir") and summary.get("gt_dir"):
        pred_dir, gt_dir = _located(summary["pred_dir"], folder), _located(summary["gt_dir"], folder)
        images = images or _guess_images(gt_dir)
        if images is None:
            raise UserError(f"{folder} scores {pred_dir} against {gt_dir} but no image folder was found beside "
                            f"{gt_dir}; pass --images DIR (the images the predictions were made from)")
        roots += [pred_dir, gt_dir, images]
        preds = _index(pred_dir) if pred_dir.is_dir() else {}
        gts = _index(gt_dir) if gt_dir.is_dir() else {}
        imgs = _index(images)
        for name in metrics:
            image = _image_for(imgs, name)
            if image is not None:
                cases[name] = ViewCase(name, image, gts.get(name), preds.get(name))
        missing = sorted(set(metrics) - set(cases))
    else:
        raise UserError(f"{summary_path} names neither pred_dir/gt_dir nor run/data; "
                        "open the folder written by samtune eval")
    for name, case in cases.items():
        case.metrics, case.per_class = metrics[name]
    return Catalog(cases, roots, "eval", run, unmatched=missing)


def study_cells(folder: Path) -> list[str]:
    """Cells of a `samtune study` folder that have been scored (runs/CELL/eval/per_case.csv)."""
    runs = folder / "runs"
    if not runs.is_dir():
        return []
    return sorted(d.name for d in runs.iterdir() if (d / "eval" / "per_case.csv").is_file())


def _choose_cell(folder: Path, cell: str | None) -> Path:
    cells = study_cells(folder)
    if not cells:
        raise UserError(f"{folder} is a study without a scored cell yet (no runs/*/eval/per_case.csv); "
                        "run samtune study first")
    if cell not in cells:
        shown = ", ".join(cells[:10]) + (f" ... and {len(cells) - 10} more" if len(cells) > 10 else "")
        what = f"--cell {cell} is not a scored cell of it" if cell else "choose a cell with --cell ID"
        raise UserError(f"{folder} is a study: {what} (one of: {shown})")
    return folder / "runs" / cell


def build_catalog(path: str | Path, images: str | Path | None = None, gt: str | Path | None = None,
                  cell: str | None = None) -> Catalog:
    """The cases `samtune view PATH [--images DIR] [--gt DIR|FILE] [--cell ID]` shows (module docstring)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; give an eval folder, a predict folder, an image folder or an image file")
    if path.is_dir() and (path / "runs").is_dir() and not (path / "per_case.csv").is_file():
        path = _choose_cell(path, cell)  # a study folder: one cell's run directory, which holds eval/
    elif cell is not None:
        raise UserError(f"--cell chooses a cell of a study folder; {path} is not one (it has no runs/ folder)")
    images_dir = _folder(images, "--images")
    if path.is_file():
        if not is_image_path(path):
            raise UserError(f"{path} is not an image or volume file samtune reads (.nii.gz, .nrrd, .mha, .png...)")
        gt_file = Path(gt).resolve() if gt is not None else None
        if gt_file is not None and not (gt_file.is_file() and is_image_path(gt_file)):
            raise UserError(f"--gt {gt} is not an image file; give the label file of {path.name}")
        name = _safe_name(case_name(path))
        roots = [path.resolve().parent] + ([gt_file.parent] if gt_file else [])
        catalog = Catalog({name: ViewCase(name, path.resolve(), gt_file)}, roots, "file")
    else:
        folder = path.resolve()
        eval_folder = folder if (folder / "per_case.csv").is_file() else folder / "eval"
        if (eval_folder / "per_case.csv").is_file():
            catalog = _eval_catalog(eval_folder, images_dir)
            if eval_folder != folder:
                catalog.roots.append(folder)
        else:
            gt_dir = _folder(gt, "--gt")
            own = _index(folder)
            gts = _index(gt_dir) if gt_dir else {}
            if images_dir is not None:  # a predict folder and the images it was made from
                imgs, kind = _index(images_dir), "predict"
                names = sorted(n for n in own if _image_for(imgs, n) is not None)
                cases = {n: ViewCase(n, image, gts.get(n), own[n]) for n in names
                         if (image := _image_for(imgs, n)) is not None}  # all of them (names)
                # predict's own overlay / montage PNGs are pictures of predictions, not predictions
                unmatched = [n for n in own if n not in cases and not n.endswith(("_overlay", "_montage"))]
            else:
                cases, kind, unmatched = {n: ViewCase(n, p, gts.get(n)) for n, p in own.items()}, "images", []
            roots = [folder] + [d for d in (images_dir, gt_dir) if d is not None]
            catalog = Catalog(cases, roots, kind, unmatched=unmatched)
    catalog.cases = {n: c for n, c in catalog.cases.items() if CASE_NAME.match(n)}
    if not catalog.cases:
        raise UserError(f"nothing to view in {path}: no image with a readable case name was found "
                        "(an eval folder, a predict folder with --images, or image files are expected)")
    _check_inside(catalog)
    return catalog


def _safe_name(name: str) -> str:
    """A case name for a single file: unsafe characters replaced (the name is only a handle)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-")
    return cleaned[:128] or "image"


def _check_inside(catalog: Catalog) -> None:
    """Every file must resolve inside an opened folder (a symlink out of them is refused)."""
    roots = [r.resolve() for r in catalog.roots]
    for case in catalog.cases.values():
        for file in case.files():
            real = Path(file).resolve()
            if not any(real.is_relative_to(root) for root in roots):
                raise UserError(f"{file} resolves to {real}, outside the opened folders "
                                f"({', '.join(map(str, roots))}); copy it in or open its folder")
    catalog.roots = roots
