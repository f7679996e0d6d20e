"""samtune.data: users' images in every form they have them, to model-ready 2D samples.

Modules (data flows top to bottom):

- `geometry`: `Geometry` (spacing/origin/direction, ITK x,y,z order) and `LoadedImage`;
  arrays are numpy order [y, x] / [z, y, x] (+ channels last).
- `readers` (`formats_2d`, `formats_itk`): `read_image`, `write_image` (atomic), a
  registry of formats keyed by extension; DICOM series folders.
- `sources` (`source_lists`, `source_nnunet`, `source_folders`): `load_source` -> `Source`
  of `Case`s; list files, nnU-Net raw folders, images/ + masks/ folders.
- `case_io`: `read_case` (channels stacked, mask checked against the image).
- `labels`: `LabelMap` (binary / explicit values / subset / dataset.json).
- `slicing`: `SliceRef` provenance, `select_slices` (empty-slice policy), `restack`.
- `intensity`, `preprocess`: `normalize_intensity`, `intensity_range`, `ResizePad`,
  `prepare_image`.
- `augment`, `prompts`: seeded joint augmentation; boxes / points from masks.
- `dataset`: `SliceDataset` (torch), `SliceDatasetConfig`.
- `split`, `validate`: few-shot splits by patient; `check_source` -> `Report`.

Names below are importable from `samtune.data` directly; modules load on first use so
that `import samtune.data` stays light (no torch).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Geometry": "geometry", "LoadedImage": "geometry",
    "read_image": "readers", "write_image": "readers", "supported_extensions": "readers",
    "Case": "sources", "Source": "sources", "Problem": "sources", "load_source": "sources",
    "CaseData": "case_io", "read_case": "case_io", "select_channels": "case_io",
    "LabelMap": "labels", "parse_label_spec": "labels",
    "SliceRef": "slicing", "slice_refs": "slicing", "take_slice": "slicing",
    "select_slices": "slicing", "restack": "slicing",
    "normalize_intensity": "intensity", "scale_intensity": "intensity", "intensity_range": "intensity",
    "CT_WINDOWS": "intensity", "MR_PERCENTILES": "intensity",
    "ResizePad": "preprocess", "prepare_image": "preprocess",
    "AugmentConfig": "augment", "apply_augment": "augment", "sample_params": "augment",
    "PromptConfig": "prompts", "Prompts": "prompts", "prompts_from_mask": "prompts",
    "SliceDataset": "dataset", "SliceDatasetConfig": "dataset",
    "Split": "split", "split_cases": "split", "write_split": "split",
    "Report": "validate", "check_source": "validate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"samtune.data.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'samtune.data' has no attribute '{name}'")
