"""List files: one case per row, ``image,mask``, comma or tab separated.

The study's files (``train_5shot.csv``) have no header, two columns, paths relative to
the list's parent folder, and a stray leading ``/`` on mask paths. All of that is
accepted:

- Delimiter: tab if the first row holds a tab, else comma.
- Header: optional. When the first row names columns, ``image`` (or image_path, img) is
  required and ``mask`` (mask_path, label, label_path, seg), ``case`` (case_id) and
  ``group`` (patient, patient_id) are optional. Without a header, rows are
  ``image,mask`` (or only ``image`` for unlabelled lists).
- Several channels of one case: image paths joined by ``;``.
- Paths: relative to ``root``; an absolute path that does not exist is read as relative
  to ``root`` (the stray ``/``). Without an explicit root the list's folder is used,
  or its parent when only there every listed file exists (the study's layout); the choice
  is recorded in ``Source.root``.
- Blank rows and rows starting with ``#`` are skipped.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from samtune.data.readers import extension_of
from samtune.data.cases import Case, Problem, Source, group_by_parent
from samtune.errors import DataError

COLUMN_NAMES = {
    "image": "image", "image_path": "image", "img": "image", "img_path": "image",
    "mask": "mask", "mask_path": "mask", "label": "mask", "label_path": "mask", "seg": "mask",
    "case": "case", "case_id": "case",
    "group": "group", "patient": "group", "patient_id": "group",
}


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read list file {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataError(f"list file {path}, line {line}: not UTF-8 text (is it a CSV file?); save it as "
                        "UTF-8 text with one 'image,mask' row per case") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(f"list file {path}, line {line}: holds NUL bytes, so it is not a text list; give a "
                        "CSV file with one 'image,mask' row per case")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise DataError(f"list file {path} has no rows; add one 'image,mask' row per case")
    delimiter = "\t" if "\t" in lines[0][1] else ","
    rows = csv.reader([line for _, line in lines], delimiter=delimiter)
    return [(n, [cell.strip() for cell in row]) for (n, _), row in zip(lines, rows)]


def _header(cells: list[str]) -> dict[str, int] | None:
    names = [cell.lower() for cell in cells]
    if not any(name in COLUMN_NAMES for name in names):
        return None
    columns: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in COLUMN_NAMES:
            columns.setdefault(COLUMN_NAMES[name], index)
    return columns


def _resolve(text: str, root: Path) -> Path:
    candidate = Path(text)
    if candidate.is_absolute():
        if candidate.exists():
            return candidate
        relative = Path(os.path.normpath(root / text.lstrip("/\\")))
        return relative if relative.exists() else candidate
    return Path(os.path.normpath(root / candidate))  # fold 'a/../b' from split lists


def _choose_root(path: Path, entries: list[tuple[list[str], str]]) -> Path:
    candidates = [path.parent, path.parent.parent]
    best, best_count = candidates[0], -1
    for candidate in candidates:
        files = [_resolve(t, candidate) for images, mask in entries for t in [*images, mask] if t]
        count = sum(f.exists() for f in files)
        if count == len(files):
            return candidate
        if count > best_count:
            best, best_count = candidate, count
    return best


def _stem(path: Path) -> str:
    ext = extension_of(path)
    return path.name[: -len(ext)] if ext and path.name.lower().endswith(ext) else path.name


def load_list(path: Path, root: Path | None = None) -> Source:
    """Cases of a list file (see the module docstring for the accepted layout)."""
    rows = _read_rows(path)
    columns = _header(rows[0][1])
    problems: list[Problem] = []
    if columns is not None:
        if "image" not in columns:
            raise DataError(
                f"{path}: header {rows[0][1]} has no image column; name the columns "
                "image,mask[,case,group]"
            )
        unknown = [c for c in rows[0][1] if c.lower() not in COLUMN_NAMES]
        if unknown:
            problems.append(Problem(f"{path} header", f"column(s) {unknown} are not used", fatal=False))
        width = len(rows[0][1])
        rows = rows[1:]
        if not rows:
            raise DataError(f"list file {path} has a header but no rows")
    entries: list[tuple[int, list[str], str, str, str]] = []  # line, images, mask, case, group
    for line, cells in rows:
        where = f"{path.name} row {line}"
        if columns is None:
            if len(cells) not in (1, 2):
                problems.append(Problem(where, f"expected 2 columns (image,mask) without a header, found "
                                        f"{len(cells)}: {cells}"))
                continue
            images, mask, case, group = cells[0], (cells[1] if len(cells) == 2 else ""), "", ""
        else:
            if len(cells) != width:
                problems.append(Problem(where, f"expected {width} columns, found {len(cells)}: {cells}"))
                continue
            images, mask, case, group = (cells[columns[key]] if key in columns else ""
                                         for key in ("image", "mask", "case", "group"))
        if not images:
            problems.append(Problem(where, "empty image path"))
            continue
        entries.append((line, images.split(";"), mask, case, group))
    if not entries:
        fatal = [p for p in problems if p.fatal]
        if not fatal:
            raise DataError(f"list file {path} has no rows")
        more = f" (and {len(fatal) - 1} more row(s) like it)" if len(fatal) > 1 else ""
        raise DataError(f"list file {path} has no usable rows: {fatal[0].where}: {fatal[0].message}{more}; "
                        "write one 'image,mask' row per case, or name the columns in a header row "
                        "(image,mask[,case,group])")
    if root is None:
        root = _choose_root(path, [(images, mask) for _, images, mask, _, _ in entries])
    return _build_source(path, root, entries, problems)


def _build_source(path: Path, root: Path, entries, problems: list[Problem]) -> Source:
    image_paths = [[_resolve(t, root) for t in images] for _, images, _, _, _ in entries]
    stems = [_stem(images[0]) for images in image_paths]
    unique = len(set(stems)) == len(stems)
    case_ids = []
    for (_, _, _, case, _), images, stem in zip(entries, image_paths, stems):
        if case:
            case_ids.append(case)
        elif unique:
            case_ids.append(stem)
        else:
            relative = images[0].relative_to(root) if images[0].is_relative_to(root) else images[0]
            case_ids.append(relative.with_name(_stem(relative)).as_posix())
    default_groups = group_by_parent([images[0] for images in image_paths], case_ids, root)
    cases: list[Case] = []
    seen: dict[str, int] = {}  # case id -> row
    for (line, _, mask, _, group), images, case_id, default_group in zip(
        entries, image_paths, case_ids, default_groups
    ):
        where = f"{path.name} row {line}"
        if case_id in seen:
            problems.append(Problem(where, f"case '{case_id}' is also on row {seen[case_id]}"))
            continue
        seen[case_id] = line
        mask_path = _resolve(mask, root) if mask else None
        cases.append(Case(case_id, tuple(images), mask_path, group or default_group, where))
    return Source(kind="list", path=path, root=root, cases=cases, problems=problems)
