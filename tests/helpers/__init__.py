"""Helpers shared by the tests, imported as ``tests.helpers.NAME``.

- `generated_data`: small generated datasets (discs in images/masks folders, DICOM series).
- `reference_models`: the official SAM / TinyViT code as parity oracles (stubs for torchvision / timm).
- `trained_runs`: tiny trained run directories, made once per session (see the conftest fixtures).
- `tiny_sam`: tiny SAM-family models, inputs and losses per family, for the method tests.
- `tiny_study`: a tiny study definition on generated data.
- `tiny_train`: a tiny training configuration on generated data.
- `killable`: `samtune` commands in child processes that a test SIGKILLs.
"""
