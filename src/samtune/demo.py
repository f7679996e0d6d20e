"""The embedded demo: few-shot fine-tuning of LiteMedSAM on real brain MRI.

Data: the MNI ICBM152 2009a T1 template and its white/grey-matter probability maps, read
from the installed `nilearn` wheel (197 x 233 x 189 voxels, 1 mm; probabilities stored as
0..255, thresholded at 0.5, i.e. >= 128). Three sets of five axial slices: five train,
five others choose the best checkpoint (the run's validation data), and five more, used
for nothing else, are the ones reported (10 mm from any training slice, 5 mm from any
selection slice). All come from the same template brain: the demo shows adaptation to a
tissue and contrast, not generalisation across subjects.

Steps: write the slices as PNG files (a `images/` + `masks/` folder pair per set),
measure zero-shot Dice of LiteMedSAM with a box around the tissue on each reported slice,
fine-tune the mask decoder (prompted with boxes, embeddings cached), measure again with
the same boxes, write titled comparison pictures (radiological view) and training curves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samtune.assets import MNI_NOTICE, mni_template
from samtune.data.prompts import mask_box
from samtune.data.readers import read_image, write_image
from samtune.engine.api import train
from samtune.engine.config import TrainConfig, check_values
from samtune.errors import UserError
from samtune.evaluation.metrics import overlap_metrics
from samtune.inference.comparison import Panel, comparison_figure
from samtune.inference.predictor import Predictor
from samtune.outputs import check_output_folder

TRAIN_SLICES = (50, 70, 90, 110, 130)  # axial indices z of the 189-slice volume
SELECT_SLICES = (55, 75, 95, 115, 135)  # validation: choose the best checkpoint
REPORT_SLICES = (60, 80, 100, 120, 140)  # held out: scored and reported only
PROBABILITY_THRESHOLD = 128  # 0.5 on the maps' 0..255 scale


@dataclass
class DemoResult:
    zero_shot: list[float]
    fine_tuned: list[float]
    train_seconds: float
    out: Path

    @property
    def zero_shot_mean(self) -> float:
        return float(np.mean(self.zero_shot))

    @property
    def fine_tuned_mean(self) -> float:
        return float(np.mean(self.fine_tuned))


def write_demo_data(out: Path, tissue: str) -> dict[str, Path]:
    """Write train/val slice folders under `out`; returns {split: folder}."""
    t1 = read_image(mni_template("t1")).array
    tissue_mask = read_image(mni_template(tissue)).array >= PROBABILITY_THRESHOLD
    folders = {}
    for split, indices in (("train", TRAIN_SLICES), ("select", SELECT_SLICES), ("report", REPORT_SLICES)):
        folder = out / split
        for z in indices:
            name = f"mni152_z{z:03d}.png"
            write_image(folder / "images" / name, t1[z])
            write_image(folder / "masks" / name, tissue_mask[z].astype(np.uint8) * 255)
        folders[split] = folder
    (out / "NOTICE-MNI152.txt").write_text(MNI_NOTICE + "\n")
    return folders


def demo_config(folders: dict[str, Path], steps: int, seed: int) -> TrainConfig:
    config = TrainConfig()
    config.model.name = "lite_medsam"
    config.strategy.component, config.strategy.method = "decoder", "full"
    # The checkpoint is chosen on the selection slices; the reported slices stay unseen.
    config.data.train, config.data.val = str(folders["train"]), str(folders["select"])
    config.task.mode, config.task.prompt, config.task.prompt_per = "prompted", "box", "class"
    config.optim.steps, config.optim.lr, config.optim.warmup_steps = steps, 1e-4, 10
    config.eval.every = max(steps // 4, 1)
    config.run.seed, config.run.log_every, config.run.checkpoint_every = seed, 10, steps
    return config


def _evaluate(predictor: Predictor, images: list[np.ndarray], masks: list[np.ndarray]) -> tuple[list[float], list]:
    predictions = [predictor.predict_image(img, box=mask_box(m)) for img, m in zip(images, masks)]
    return [overlap_metrics(p > 0, m)[0] for p, m in zip(predictions, masks)], predictions


def run_demo(out: str | Path, tissue: str = "wm", steps: int = 100, seed: int = 0, overwrite: bool = False) -> DemoResult:
    out = Path(out)
    if tissue not in ("wm", "gm"):
        raise UserError(f"unknown tissue '{tissue}'; choose wm (white matter) or gm (grey matter)")
    if steps < 1:
        raise UserError(f"--steps {steps} is out of range; give at least 1 optimiser step (default 100)")
    if not 0 <= seed < 2**32:
        raise UserError(f"--seed {seed} is out of range; give an integer in [0, 2**32)")
    check_output_folder(out, overwrite)
    check_values(demo_config({"train": out, "select": out}, steps, seed))
    folders = write_demo_data(out / "data", tissue)
    names = [f"mni152_z{z:03d}.png" for z in REPORT_SLICES]
    images = [read_image(folders["report"] / "images" / n).array for n in names]
    masks = [read_image(folders["report"] / "masks" / n).array > 0 for n in names]

    zero_shot, zero_predictions = _evaluate(Predictor.from_model("lite_medsam"), images, masks)
    config = demo_config(folders, steps, seed)
    started = time.perf_counter()
    train(config, out / "run", overwrite=True)
    seconds = time.perf_counter() - started
    tuned, tuned_predictions = _evaluate(Predictor.from_run(out / "run"), images, masks)

    # The slices are stored as the template's arrays (RAS); the pictures turn them to the
    # radiological view with the template's direction cosines.
    geometry = read_image(mni_template("t1")).geometry
    tissue_name = "white matter" if tissue == "wm" else "grey matter"
    for z, name, image, zs, ft, mask, d0, d1 in zip(REPORT_SLICES, names, images, zero_predictions,
                                                    tuned_predictions, masks, zero_shot, tuned):
        panels = [Panel("truth", mask.astype(np.uint8)), Panel("zero-shot", zs, d0), Panel("fine-tuned", ft, d1)]
        comparison_figure(image, panels, out / "overlays" / name, box=mask_box(mask), class_name=tissue_name,
                          geometry=geometry, axis=0,
                          title=f"MNI152 axial slice z={z} (reported; not used for training or checkpoint choice)")
    return DemoResult(zero_shot, tuned, seconds, out)
