#!/usr/bin/env bash
# Install nnU-Net v2 (the samtune[nnunet] extra) WITHOUT replacing the CPU torch build.
# A plain `pip install nnunetv2` pulls timm -> torchvision -> another (multi-GB) torch; nnU-Net's
# planning, preprocessing, training and prediction import neither timm nor torchvision, so its
# packages are installed with --no-deps and their own needs listed here, pinned (seaborn: nnU-Net's
# training logger imports it; graphviz and imagecodecs are not imported by the commands samtune runs).
set -euo pipefail
PY=${PYTHON:-python}
"$PY" -m pip install -q --no-deps nnunetv2==2.8.1 dynamic_network_architectures==0.4.4 \
  batchgenerators==0.25.5 batchgeneratorsv2==0.3.6 acvl_utils==0.2.6 connected-components-3d==4.1.1 \
  blosc2==4.14.1 ndindex==1.10.1 msgpack==1.2.4 numexpr==2.14.2 einops==0.8.2 nibabel==5.4.2 \
  pandas==3.1.1 scikit-image==0.26.0 scikit-learn==1.9.1 narwhals==2.29.0 joblib==1.6.0 threadpoolctl==3.8.0 \
  tifffile==2026.3.3 ImageIO==2.38.1 lazy-loader==0.6 tqdm==4.70.1 yacs==0.1.8 requests==2.34.2 \
  charset-normalizer==3.5.3 importlib_resources==7.1.0 pydantic==2.14.4 pydantic_core==2.50.5 \
  annotated-types==0.8.0 typing-inspection==0.4.5 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 future==1.0.0 \
  seaborn==0.13.2
