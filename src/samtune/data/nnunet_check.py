"""nnU-Net v2 as an optional dependency: find it, and run its own dataset integrity check.

nnunetv2 is installed by the ``samtune[nnunet]`` extra. Its environment variables
(nnUNet_raw, nnUNet_preprocessed, nnUNet_results) are read when its modules are imported,
so they are set before the first import and restored afterwards.
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from samtune.errors import UserError

NNUNET_VERSION = "2.8.1"
INSTALL_HINT = (f"nnU-Net v2 is not installed: run pip install 'samtune[nnunet]' (nnunetv2=={NNUNET_VERSION}), "
                "or scripts/install_nnunet.sh to keep a CPU-only torch build")


def require_nnunet() -> None:
    """UserError naming the install command when nnunetv2 is missing."""
    if importlib.util.find_spec("nnunetv2") is None:
        raise UserError(INSTALL_HINT)


@contextmanager
def nnunet_environment(raw: Path, preprocessed: Path | None = None, results: Path | None = None) -> Iterator[None]:
    """nnU-Net's three folders as environment variables for the duration of the block."""
    values = {"nnUNet_raw": raw, "nnUNet_preprocessed": preprocessed or raw.parent / "nnUNet_preprocessed",
              "nnUNet_results": results or raw.parent / "nnUNet_results"}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def verify_with_nnunet(dataset_folder: str | Path, processes: int = 1) -> None:
    """Run nnU-Net's `verify_dataset_integrity` on an exported dataset; UserError if it fails."""
    require_nnunet()
    folder = Path(dataset_folder)
    with nnunet_environment(folder.parent):
        from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

        try:
            verify_dataset_integrity(str(folder), processes)
        except (AssertionError, RuntimeError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"nnU-Net's integrity check failed on {folder}: {first}") from None
