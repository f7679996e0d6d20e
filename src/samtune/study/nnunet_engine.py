"""nnU-Net v2 run as an external engine: its own planning and preprocessing commands.

samtune does not reimplement or patch nnU-Net: it runs nnU-Net's installed console
scripts in a subprocess whose environment points ``nnUNet_raw``,
``nnUNet_preprocessed`` and ``nnUNet_results`` at folders the caller chooses (a study's
output folder), so nothing leaks into the user's own nnU-Net folders and nnU-Net's
module-level path variables are always fresh.

This module builds and runs the commands (planning + preprocessing, training, prediction);
`samtune.study.nnunet_cell` runs them as one cell of a study and scores the predictions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from samtune.data.nnunet_check import require_nnunet
from samtune.errors import UserError

CONFIGURATIONS_2D = ("2d",)
CONFIGURATIONS_3D = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")


@dataclass
class NnunetFolders:
    raw: Path
    preprocessed: Path
    results: Path

    @classmethod
    def inside(cls, work: str | Path, raw: str | Path | None = None) -> NnunetFolders:
        work = Path(work)
        return cls(Path(raw) if raw else work / "nnUNet_raw", work / "nnUNet_preprocessed", work / "nnUNet_results")

    def environment(self) -> dict[str, str]:
        return {**os.environ, "nnUNet_raw": str(self.raw), "nnUNet_preprocessed": str(self.preprocessed),
                "nnUNet_results": str(self.results), "nnUNet_n_proc_DA": "1"}


def dataset_id_of(folder: Path) -> int:
    name = folder.name
    if not (name.startswith("Dataset") and name[7:10].isdigit() and name[10:11] == "_"):
        raise UserError(f"{folder} is not an nnU-Net raw dataset folder (DatasetNNN_NAME)")
    return int(name[7:10])


def image_dimension(folder: Path) -> int:
    """2 or 3: spatial dimension of the dataset's first training image (header only)."""
    import SimpleITK as sitk

    meta = json.loads((folder / "dataset.json").read_text())
    images = sorted((folder / "imagesTr").glob(f"*_0000{meta.get('file_ending', '.nii.gz')}"))
    if not images:
        raise UserError(f"{folder}/imagesTr holds no CASE_0000 image")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(images[0]))
    reader.ReadImageInformation()
    return reader.GetDimension()


def check_configuration(folder: Path, configuration: str) -> None:
    """UserError, before anything runs, for a configuration nnU-Net cannot plan for this data."""
    dim = image_dimension(folder)
    allowed = CONFIGURATIONS_2D if dim == 2 else CONFIGURATIONS_3D
    if configuration not in allowed:
        raise UserError(
            f"nnU-Net configuration '{configuration}' does not exist for {folder.name} ({dim}D images); "
            f"choose {' or '.join(allowed)}"
        )


def trainer_module(name: str) -> str | None:
    """The dotted module of nnunetv2 that defines trainer class `name`, or None (read from
    its source files, no import: importing nnU-Net's trainers costs seconds)."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("nnunetv2")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(list(spec.submodule_search_locations)[0])
    pattern = re.compile(rf"^class {re.escape(name)}\(", re.MULTILINE)
    for path in sorted((package / "training" / "nnUNetTrainer").rglob("*.py")):
        if pattern.search(path.read_text(encoding="utf-8", errors="replace")):
            return "nnunetv2." + ".".join(path.relative_to(package).with_suffix("").parts)
    return None


def trainer_exists(name: str) -> bool:
    return trainer_module(name) is not None


def die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM when the process that started it dies, so
    that a killed study cell leaves no nnU-Net command running on (its run resumes later)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child_setup():
    return die_with_parent if sys.platform.startswith("linux") else None


def _script(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.is_file() else name


def plan_and_preprocess(dataset_folder: str | Path, work: str | Path, configuration: str = "2d",
                        processes: int = 1, log: Path | None = None) -> Path:
    """Run nnU-Net's fingerprinting, planning and preprocessing of `configuration`.

    `dataset_folder` is RAW/DatasetNNN_NAME; nnUNet_preprocessed and nnUNet_results are
    created inside `work`. Returns the plans file (nnUNetPlans.json).
    """
    require_nnunet()
    folder = Path(dataset_folder).absolute()
    dataset_id = dataset_id_of(folder)
    check_configuration(folder, configuration)
    folders = NnunetFolders.inside(work, raw=folder.parent)
    folders.preprocessed.mkdir(parents=True, exist_ok=True)
    command = [_script("nnUNetv2_plan_and_preprocess"), "-d", str(dataset_id), "-c", configuration,
               "-np", str(processes), "-npfp", str(processes)]
    # nnU-Net prints UTF-8 whatever locale a library has set in this process
    done = subprocess.run(command, env=folders.environment(), capture_output=True, encoding="utf-8", errors="replace",
                          preexec_fn=_child_setup())
    if log is not None:
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"nnU-Net planning/preprocessing of {folder.name} failed: {last}")
    return folders.preprocessed / folder.name / "nnUNetPlans.json"


def run_command(command: list[str], folders: NnunetFolders, log: Path, what: str) -> None:
    """Run one nnU-Net command with `folders` as its environment; its output is appended to
    `log`. UserError with the last line of its error output when it fails."""
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        done = subprocess.run(command, env=folders.environment(), stdout=handle, stderr=subprocess.PIPE,
                              encoding="utf-8", errors="replace", preexec_fn=_child_setup())
        handle.write(done.stderr)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"nnU-Net {what} failed (exit {done.returncode}; log: {log}): {last}")


LAUNCHER = "samtune.study.nnunet_launch"  # nnU-Net's Python API in a subprocess (see its docstring)


def load_checkpoint(path: str | Path) -> dict:
    """An nnU-Net checkpoint, read with ``torch.load(weights_only=True)``. nnU-Net stores its
    logged validation pseudo-Dice as numpy scalars in the checkpoint, which the weights-only
    unpickler refuses by default; numpy's scalar and dtype reconstructors are allowed for it,
    nothing else."""
    import numpy as np
    import torch

    numpy_core = getattr(np, "_core", None) or np.core  # numpy 2 renamed np.core to np._core
    allowed = [np.dtype, numpy_core.multiarray.scalar,
               *{type(np.dtype(kind)) for kind in (np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_)}]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def train_command(dataset_id: int, configuration: str, fold: int | str, trainer: str, device: str = "cpu",
                  resume: bool = False) -> list[str]:
    """What ``nnUNetv2_train ID CONF FOLD -tr TRAINER -device DEVICE [--c]`` does; ``resume``
    continues from checkpoint_latest.pth."""
    command = [sys.executable, "-m", LAUNCHER, "train", str(dataset_id), configuration, str(fold), trainer, device]
    return command + (["--c"] if resume else [])


def predict_command(images: Path, out: Path, dataset_id: int, configuration: str, fold: int | str, trainer: str,
                    device: str = "cpu") -> list[str]:
    """What ``nnUNetv2_predict -i IMAGES -o OUT -d ID -c CONF -f FOLD -tr TRAINER --continue_prediction``
    does: every ``CASE_0000`` image of `images` with the final checkpoint (nnU-Net's own
    test-time mirroring kept); cases already written are skipped, so a prediction resumes."""
    return [sys.executable, "-m", LAUNCHER, "predict", str(images), str(out), str(dataset_id), configuration,
            str(fold), trainer, device]


def fold_folder(folders: NnunetFolders, dataset_folder_name: str, configuration: str, fold: int | str,
                trainer: str, plans: str = "nnUNetPlans") -> Path:
    """Where nnU-Net writes a training's checkpoints (checkpoint_latest.pth, checkpoint_final.pth)."""
    return folders.results / dataset_folder_name / f"{trainer}__{plans}__{configuration}" / f"fold_{fold}"
