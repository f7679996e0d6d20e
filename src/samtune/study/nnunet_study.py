"""nnU-Net v2 as a study backbone: what a cell is and where its files go (where it stands:
`samtune.study.state.nnunet_status`).

A backbone entry ``{engine: nnunetv2, configuration: 2d, trainer: nnUNetTrainer_1epoch,
fold: all}`` gives one cell per dataset, few-shot size and seed (like the U-Net
baseline), run by nnU-Net's own commands (`samtune.study.nnunet_engine`) and scored by
samtune's evaluation (`samtune.study.nnunet_cell`)::

    OUT/nnunet/nnUNet_raw/Dataset001_<dataset>[-shotsK-seedS]/  the cell's training source, exported
    OUT/nnunet/nnUNet_preprocessed/Dataset001_.../               nnU-Net's plans and preprocessed data
    OUT/nnunet/inputs/<dataset>-<val|test>/CASE_0000.nii.gz      the images to predict (shared)
    OUT/runs/<cell>/nnunet.json        the cell's settings (a changed study makes the cell stale)
    OUT/runs/<cell>/nnUNet_results/    nnU-Net's training of this cell (checkpoints, its log)
    OUT/runs/<cell>/predictions/       nnU-Net's predictions (CASE.nii.gz)
    OUT/runs/<cell>/summary.json       training wall time, iterations, parameters
    OUT/runs/<cell>/eval/              per_case.csv, summary.json: samtune's scores

Raw and preprocessed data are shared by the cells that train on the same source; each
cell has its own ``nnUNet_results``, because seeds of one source would otherwise share a
training folder. Dataset ids are given in grid order from 1, per training source. nnU-Net
has no seed option: a seed repeats the training (and draws the few-shot split).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from samtune.errors import ConfigError, UserError

ENGINE = "nnunetv2"
SETTINGS_FILE = "nnunet.json"
PREDICTIONS_DIR = "predictions"
ITERATIONS_PER_EPOCH = 250  # nnUNetTrainer.num_iterations_per_epoch (nnunetv2 2.8.1)
VALIDATION_ITERATIONS = 50  # nnUNetTrainer.num_val_iterations_per_epoch
DEFAULT_EPOCHS = 1000  # nnUNetTrainer.num_epochs


@dataclass
class NnunetCell:
    """The nnU-Net settings of one cell (``Cell.engine``, also saved as ``nnunet.json``)."""

    configuration: str
    trainer: str
    fold: int | str
    dataset_id: int
    dataset_name: str  # DatasetNNN_<this>
    train_source: str
    labels: str | None
    other_labels: str  # data.other_labels: the rule for values the labels do not name (as training)
    score_source: str
    score_key: str  # <dataset>-val or <dataset>-test: the shared folder of images to predict
    device: str

    @property
    def folder_name(self) -> str:
        return f"Dataset{self.dataset_id:03d}_{self.dataset_name}"


def is_nnunet(config: Any, label: str) -> bool:
    entry = config.backbones.get(label)
    return entry is not None and bool(entry.engine)


def row_label(settings: NnunetCell | dict[str, Any]) -> str:
    data = settings if isinstance(settings, dict) else asdict(settings)
    return f"nnU-Net {data['configuration']} ({data['trainer']}, fold {data['fold']})"


def trainer_epochs(trainer: str) -> int:
    """Epochs of a shipped trainer, from its name (nnUNetTrainer_5epochs: 5; nnUNetTrainer: 1000)."""
    import re

    match = re.search(r"_(\d+)epochs?(?:_|$)", trainer)
    return int(match.group(1)) if match else DEFAULT_EPOCHS


def check_nnunet_backbone(config: Any, label: str) -> None:
    """ConfigError/UserError naming ``backbones.<label>`` for an entry nnU-Net cannot run."""
    from samtune.data.nnunet_check import require_nnunet
    from samtune.study.nnunet_engine import CONFIGURATIONS_3D, trainer_exists

    entry = config.backbones[label]
    where = f"backbones.{label}"
    if entry.engine != ENGINE:
        raise ConfigError(f"{where}.engine: '{entry.engine}' is not an engine; give {ENGINE} (or leave it out)")
    require_nnunet()
    if config.train.task.mode != "automatic":
        raise ConfigError(f"{where}: task.mode={config.train.task.mode} with nnU-Net: nnU-Net segments without "
                          "prompts; set train.task.mode=automatic, or remove it from backbones")
    for key in ("model", "checkpoint", "image_size"):
        if getattr(entry, key) is not None:
            raise ConfigError(f"{where}.{key}: does not apply to engine {ENGINE} (nnU-Net plans its own network "
                              "and trains from scratch); remove it")
    if entry.overrides:
        raise ConfigError(f"{where}.overrides: samtune's training values do not apply to engine {ENGINE}; "
                          "choose the schedule with trainer (e.g. nnUNetTrainer_5epochs)")
    if entry.configuration not in CONFIGURATIONS_3D:
        raise ConfigError(f"{where}.configuration: '{entry.configuration}' is not an nnU-Net configuration; "
                          f"choose {', '.join(CONFIGURATIONS_3D)}")
    if not (entry.fold == "all" or (isinstance(entry.fold, int) and 0 <= entry.fold <= 4)):
        raise ConfigError(f"{where}.fold: {entry.fold!r}; give 0-4 (nnU-Net's 5 folds) or all")
    if not trainer_exists(entry.trainer):
        raise ConfigError(f"{where}.trainer: nnU-Net ships no trainer '{entry.trainer}'; e.g. nnUNetTrainer_1epoch, "
                          "nnUNetTrainer_5epochs, nnUNetTrainer (1000 epochs)")


def source_dimension(path: str) -> int:
    """2 or 3: spatial dimension of a source's first image, from its header."""
    from samtune.data.sources import load_source

    image = Path(load_source(path).cases[0].images[0])
    if image.is_dir():
        return 3  # a DICOM series
    if not image.name.lower().endswith((".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")):
        return 2
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(image))
    reader.ReadImageInformation()
    size = [s for s in reader.GetSize() if s > 1] if reader.GetDimension() == 3 else reader.GetSize()
    return 3 if len(size) == 3 else 2


def check_nnunet_datasets(config: Any) -> None:
    """A configuration that does not exist for a dataset's images (3d_fullres on 2D slices),
    and the datasets axis' cross-validation (nnU-Net has its own folds)."""
    for label in (b for b in config.backbones if is_nnunet(config, b)):
        entry = config.backbones[label]
        for name, dataset in config.datasets.items():
            if dataset.folds is not None:
                raise ConfigError(f"datasets.{name}.folds: cross-validation does not combine with backbones.{label} "
                                  "(engine nnunetv2 has its own folds: its fold key)")
            if entry.configuration != "2d" and source_dimension(dataset.train) == 2:
                raise ConfigError(f"backbones.{label}.configuration: nnU-Net configuration '{entry.configuration}' "
                                  f"does not exist for datasets.{name} (2D images); choose 2d")


def nnunet_settings(config: Any, label: str, dataset_name: str, shots: int | None, seed: int,
                    train_source: str, labels: str | None, score_source: str, scored_on: str,
                    ids: dict[str, int]) -> NnunetCell:
    """The settings of one cell; ``ids`` maps training sources to dataset ids (filled in grid order)."""
    entry = config.backbones[label]
    dataset_id = ids.setdefault(train_source, len(ids) + 1)
    name = dataset_name.replace(".", "-") + (f"-shots{shots}-seed{seed}" if shots is not None else "")
    device = config.train.run.device
    return NnunetCell(entry.configuration, entry.trainer, entry.fold, dataset_id, name, train_source, labels,
                      config.train.data.other_labels, score_source, f"{dataset_name}-{scored_on}", device)


def settings_of(cell: Any) -> NnunetCell:
    return NnunetCell(**cell.engine)


def check_nnunet_folders(out_dir: Path, cells: list[Any]) -> None:
    """UserError when a dataset id of the study's nnU-Net raw folder is already used with
    other content (another dataset name, or the same name exported from another source)."""
    raw = Path(out_dir) / "nnunet" / "nnUNet_raw"
    if not raw.is_dir():
        return
    for cell in cells:
        if not cell.engine:
            continue
        settings = settings_of(cell)
        for folder in sorted(raw.glob(f"Dataset{settings.dataset_id:03d}_*")):
            other = folder.name != settings.folder_name
            if not other:
                try:
                    meta = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
                    other = meta.get("description") != f"exported by samtune from {settings.train_source}"
                except (OSError, ValueError):
                    other = True
            if other:
                raise UserError(f"nnU-Net dataset id {settings.dataset_id} is already used by {folder} with other "
                                f"content (cell {cell.cell_id} needs {settings.folder_name} from "
                                f"{settings.train_source}); use another --out")
