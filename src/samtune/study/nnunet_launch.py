"""Train and predict with nnU-Net v2 through its Python API; run as a subprocess:

    python -m samtune.study.nnunet_launch train DATASET_ID CONFIGURATION FOLD TRAINER DEVICE [--c]
    python -m samtune.study.nnunet_launch predict INPUTS OUTPUT DATASET_ID CONFIGURATION FOLD TRAINER DEVICE

with ``nnUNet_raw`` / ``nnUNet_preprocessed`` / ``nnUNet_results`` in the environment
(`samtune.study.nnunet_engine.NnunetFolders`).

Why not ``nnUNetv2_train`` / ``nnUNetv2_predict``: both find the trainer class by
importing every module under ``nnunetv2.training.nnUNetTrainer`` until one defines it,
and nnunetv2 2.8.1 reaches its ``primus`` trainers (which import timm, and timm imports
torchvision) before the ``variants`` that hold the short schedules. samtune keeps a
CPU-only torch without torchvision (scripts/install_nnunet.sh), so this module imports
the one module that defines the trainer (found by `trainer_module`) and otherwise does
what the two commands do with nnU-Net's own functions: the trainer built from the
preprocessed plans, ``maybe_load_checkpoint`` (``--c``) and ``run_training``; prediction
with ``nnUNetPredictor`` (test-time mirroring as trained, tiles at step 0.5, files
already written are kept, so an interrupted prediction resumes). nnU-Net's validation
on its own held-out fold is skipped: samtune scores the study's val/test source itself.
"""

from __future__ import annotations

import sys
from typing import Any


def trainer_class(name: str) -> Any:
    import importlib

    from samtune.study.nnunet_engine import trainer_module

    module = trainer_module(name)
    if module is None:
        raise SystemExit(f"nnU-Net ships no trainer {name}")
    return getattr(importlib.import_module(module), name)


def _fold(text: str) -> int | str:
    return text if text == "all" else int(text)


def train(dataset_id: int, configuration: str, fold: int | str, trainer: str, device: str, resume: bool) -> None:
    import torch
    from batchgenerators.utilities.file_and_folder_operations import join, load_json
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.run.run_training import maybe_load_checkpoint
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    folder = join(nnUNet_preprocessed, maybe_convert_to_dataset_name(dataset_id))
    plans = load_json(join(folder, "nnUNetPlans.json"))
    plans["continue_training"] = resume  # as get_trainer_from_args sets it
    network_trainer = trainer_class(trainer)(plans=plans, configuration=configuration, fold=fold,
                                             dataset_json=load_json(join(folder, "dataset.json")),
                                             device=torch.device(device))
    maybe_load_checkpoint(network_trainer, resume, False)
    network_trainer.run_training()


def predict(inputs: str, output: str, dataset_id: int, configuration: str, fold: int | str, trainer: str,
            device: str) -> None:
    import torch
    from batchgenerators.utilities.file_and_folder_operations import join, load_json
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.paths import nnUNet_results
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from samtune.study.nnunet_engine import load_checkpoint

    model = join(nnUNet_results, maybe_convert_to_dataset_name(dataset_id), f"{trainer}__nnUNetPlans__{configuration}")
    dataset_json = load_json(join(model, "dataset.json"))
    plans = PlansManager(load_json(join(model, "plans.json")))
    checkpoint = load_checkpoint(join(model, f"fold_{fold}", "checkpoint_final.pth"))
    manager = plans.get_configuration(configuration)
    network = trainer_class(trainer).build_network_architecture(
        plans, manager, determine_num_input_channels(plans, manager, dataset_json),
        plans.get_label_manager(dataset_json).num_segmentation_heads, enable_deep_supervision=False)
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                device=torch.device(device), verbose=False, allow_tqdm=False)
    predictor.manual_initialization(network, plans, manager, [checkpoint["network_weights"]], dataset_json, trainer,
                                    checkpoint.get("inference_allowed_mirroring_axes"))
    predictor.predict_from_files(inputs, output, save_probabilities=False, overwrite=False,
                                 num_processes_preprocessing=1, num_processes_segmentation_export=1)


def main(argv: list[str]) -> None:
    if argv[0] == "train":
        dataset_id, configuration, fold, trainer, device = argv[1:6]
        train(int(dataset_id), configuration, _fold(fold), trainer, device, "--c" in argv[6:])
    elif argv[0] == "predict":
        inputs, output, dataset_id, configuration, fold, trainer, device = argv[1:8]
        predict(inputs, output, int(dataset_id), configuration, _fold(fold), trainer, device)
    else:
        raise SystemExit(f"unknown action {argv[0]}; give train or predict")


if __name__ == "__main__":
    main(sys.argv[1:])
