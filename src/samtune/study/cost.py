"""Estimated cost of a cell, for `samtune study --dry-run`.

The figures are seconds on an idle 2-core CPU at batch 1, as `samtune train` runs them
(BENCHMARKS.md; the CPU prostate study, 2026-11-28): a LiteMedSAM encoder forward takes
1.3 s, a decoder-only step on cached embeddings 0.3 s, an encoder+decoder step 3.6 s
(adapter), 3.9 s (LoRA) or 5.5 s (full fine-tuning), and a SAM ViT-B forward at 1024 px
about 11 s (DESIGN.md). ViT-L and ViT-H are scaled from ViT-B by their
published encoder FLOPs (1.3 and 3.0 TFLOP against 0.49), MobileSAM from LiteMedSAM (the
same TinyViT on the same 64x64 token grid, plus a strided stem on the 1024 px input).
A ViT run at a reduced ``image_size`` s is scaled by (s / 1024)^2 (tokens; windowed
attention is linear in them). Training steps multiply with batch size x accumulation
(batching does not pay on a CPU).

Once some cells of the study have finished, the measured seconds per step of a finished
cell with the same model, input size, component, method, batch and device replace the
table (``basis="measured"``); other CPU cells get the table times how much slower or
faster than the table the finished cells ran on this machine (``basis="table x2.5"``).
So estimates sharpen as a study runs, on any machine. An interrupted cell is estimated
for the steps after its last checkpoint only (plus the set-up it repeats on resume).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from samtune.runs.layout import RunLayout
from samtune.study.grid import Cell
from samtune.study.state import run_dir

ENCODER_FORWARD_S = {  # one image-encoder forward, native input size, batch 1
    "lite_medsam": 1.3,
    "mobile_sam": 1.5,
    "sam_vit_b": 11.0,
    "medsam_vit_b": 11.0,
    "sam_vit_l": 11.0 * 1.315 / 0.487,
    "sam_vit_h": 11.0 * 2.973 / 0.487,
}
TEST_MODEL_FORWARD_S = 0.02  # tiny *_test registry entries
DECODER_STEP_S = 0.3  # mask decoder forward + backward + AdamW on a cached embedding
# encoder+decoder training step / encoder forward, from the study's measured steps
# (dora: the strategies benchmark's DoRA / LoRA ratio, 1.07, applied to LoRA)
ENCODER_STEP_FACTOR = {"full": 4.2, "lora": 3.0, "adapter": 2.8, "dora": 3.2}
DEFAULT_STEP_FACTOR = 4.2
CELL_OVERHEAD_S = 5.0  # building the model, loading weights, writing the run directory
# The U-Net baseline (model unet, from scratch): one training step at batch 1 on its planned
# 384 px frame of the prostate slices (7 levels, 33.5M parameters), 2 threads, the lowest of
# benchmarks/unet_step.py's runs (BENCHMARKS.md "Baselines"); other frames scale by pixels
# (the 256 px row gave 0.92 s, 2.0x less for 2.25x fewer pixels). Inference: a forward,
# about a third of a step.
UNET_STEP_S = 1.8
UNET_FRAME = 384
# nnU-Net v2 cells (engine: nnunetv2), 2d configuration of the 384 px prostate slices (batch 2,
# 7 stages), 2-core CPU, BENCHMARKS.md "nnU-Net v2 as a study engine": one training iteration
# (forward + backward of the deep-supervised network), a validation iteration (forward only),
# planning + preprocessing + process starts, and the prediction of one slice (4 mirrored forwards).
# Other configurations have no figure of their own and get these. The iterations come from a real
# nnUNetTrainer_1epoch cell of cpu_prostate_baselines (2026-12-02): its epoch (250 + 50) took
# 2622 s beside a LiteMedSAM cell on the other worker; divided by 1.5, the slowdown the same study's
# LiteMedSAM encoder+decoder cell showed beside a second worker against this table (1710 s, 19 min).
NNUNET_ITERATION_S = 6.5
NNUNET_VALIDATION_ITERATION_S = 2.0
NNUNET_SETUP_S = 90.0
NNUNET_PREDICT_SLICE_S = 4.0


@dataclass(frozen=True)
class Estimate:
    seconds: float
    basis: str  # "table", "table xF" (calibrated), "CPU table" (a GPU cell) or "measured"


def encoder_forward_seconds(model: str, image_size: int | None) -> float:
    from samtune.models.registry import get_spec

    spec = get_spec(model)
    if spec.test_only:
        return TEST_MODEL_FORWARD_S
    seconds = ENCODER_FORWARD_S.get(model)
    if seconds is None:  # an unlisted model: the family's representative
        seconds = ENCODER_FORWARD_S["sam_vit_b" if spec.family == "sam_vit" else "lite_medsam"]
    if image_size and spec.family == "sam_vit":
        seconds *= (image_size / spec.image_size) ** 2
    return seconds


def count_slices(path: str | None, axis: int = 0) -> int:
    """2D slices of a source: one per 2D image, the volume's depth (from the file header)
    for 3D files, the file count for a DICOM series folder. Lists no pixels."""
    if not path:
        return 0
    from samtune.data.sources import load_source

    total = 0
    for case in load_source(path).cases:
        total += case_slices(Path(case.images[0]), axis)
    return total


def case_slices(image: Path, axis: int) -> int:
    if image.is_dir():
        return max(1, sum(1 for p in image.iterdir() if p.is_file()))
    name = image.name.lower()
    if not name.endswith((".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")):
        return 1
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(image))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return 1  # unreadable: the run itself will say why
    size = reader.GetSize()  # (x, y, z): array axis k is size[-1 - k]
    return int(size[-1 - axis]) if len(size) == 3 else 1


def cell_kind(cell: Cell) -> tuple:
    """What makes two cells cost the same per step."""
    c = cell.config
    return (c.model.name, c.model.image_size, c.strategy.component, c.strategy.method, c.optim.batch_size,
            c.optim.accumulation, c.run.device, c.data.augment, c.run.cache_embeddings)


def _train_summary(cell: Cell, out_dir: Path) -> dict | None:
    path = RunLayout(run_dir(out_dir, cell)).summary_path
    try:
        summary = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        return summary if summary and summary.get("train_seconds") and summary.get("steps") else None
    except (OSError, ValueError):
        return None


def measured_rates(cells: list[Cell], out_dir: Path) -> dict[tuple, float]:
    """Seconds per optimiser step of finished cells, per kind of cell (`cell_kind`)."""
    rates: dict[tuple, float] = {}
    for cell in cells:
        summary = _train_summary(cell, out_dir) if not cell.engine else None  # nnU-Net: its own table
        if summary:
            rates.setdefault(cell_kind(cell), summary["train_seconds"] / summary["steps"])
    return rates


def calibration(cells: list[Cell], out_dir: Path, slices: dict[str, tuple[int, int]]) -> float | None:
    """How much slower (or faster) than the table this machine has been: the finished
    cells' training seconds over the table's figure for them. ``slices``: dataset ->
    (train, val) slice counts."""
    measured = table = 0.0
    for cell in cells:
        summary = _train_summary(cell, out_dir) if not cell.engine else None
        if summary and cell.config.run.device != "cuda":
            measured += summary["train_seconds"]
            table += table_train_seconds(cell, *slices[cell.dataset])
    return measured / table if table > 0 else None


def checkpoint_step(cell: Cell, out_dir: Path) -> int:
    """The step of an interrupted cell's last checkpoint (0 when it has none)."""
    return saved_step(Path(out_dir) / "runs" / cell.cell_id / "state" / "last.pt")


def saved_step(path: Path) -> int:
    """The step recorded in a training state file (0 when it is absent or unreadable)."""
    if not path.is_file():
        return 0
    try:
        import torch

        # mmap: only the small "step" entry is read, not the optimiser state.
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["step"])
    except Exception:  # an unreadable checkpoint is the resume's problem, not the estimate's
        return 0


def unet_step_seconds(image_size: int | None) -> float:
    """Table seconds of one U-Net training step (batch 1) at ``image_size`` (None: the 384 px
    frame planned for the prostate slices; the real frame is planned from the data at run time)."""
    return UNET_STEP_S * ((image_size or UNET_FRAME) / UNET_FRAME) ** 2


def _is_unet(model: str) -> bool:
    from samtune.errors import UserError
    from samtune.models.registry import get_spec

    try:
        spec = get_spec(model)
    except UserError:
        return False
    return spec.family == "unet" and not spec.test_only


def table_train_seconds(cell: Cell, train_slices: int, val_slices: int, done_steps: int = 0) -> float:
    """The table's training seconds of a cell: encoding for the cache, steps, validations.
    ``done_steps``: steps already checkpointed (a resumed cell trains the rest only)."""
    c = cell.config
    if _is_unet(c.model.name):  # trained from scratch: every step is a full forward + backward
        step = unet_step_seconds(c.model.image_size)
        done = min(max(done_steps, 0), c.optim.steps)
        validations = (math.ceil(c.optim.steps / max(1, c.eval.every)) - done // max(1, c.eval.every)) if val_slices else 0
        return step * c.optim.batch_size * c.optim.accumulation * (c.optim.steps - done) + validations * step / 3 * val_slices
    forward = encoder_forward_seconds(c.model.name, c.model.image_size)
    per_step = c.optim.batch_size * c.optim.accumulation
    done = min(max(done_steps, 0), c.optim.steps)
    every = max(1, c.eval.every)
    validations = (math.ceil(c.optim.steps / every) - done // every) if val_slices else 0
    cached = c.strategy.component == "decoder" and not c.data.augment and c.run.cache_embeddings != "off"
    if cached:  # each slice is encoded once (validation slices too), then steps cost the decoder only
        seen = min(train_slices, c.optim.steps * per_step)
        setup, step, validation = forward * (seen + val_slices), DECODER_STEP_S, DECODER_STEP_S / 3 * val_slices
    else:
        factor = ENCODER_STEP_FACTOR.get(c.strategy.method, DEFAULT_STEP_FACTOR)
        step = forward + DECODER_STEP_S if c.strategy.component == "decoder" else forward * factor
        setup, validation = 0.0, forward * val_slices
    return setup + step * per_step * (c.optim.steps - done) + validations * validation


def estimate_cell(cell: Cell, train_slices: int, val_slices: int, score_slices: int,
                  rates: dict[tuple, float] | None = None, scale: float | None = None,
                  done_steps: int = 0) -> Estimate:
    """Seconds to train and score one cell (see the module docstring).

    ``rates``: measured seconds per step by `cell_kind` (used when the cell's kind has
    one); ``scale``: the `calibration` of this machine, applied to table figures;
    ``done_steps``: steps an interrupted cell has checkpointed (`checkpoint_step`).
    """
    if cell.engine:
        return Estimate(nnunet_seconds(cell, score_slices), "table")
    c = cell.config
    forward = unet_step_seconds(c.model.image_size) / 3 if _is_unet(c.model.name) else \
        encoder_forward_seconds(c.model.name, c.model.image_size)
    inference = forward * score_slices
    measured = (rates or {}).get(cell_kind(cell))
    left = c.optim.steps - min(max(done_steps, 0), c.optim.steps)
    if measured is not None:
        return Estimate(CELL_OVERHEAD_S + measured * left + inference * (scale or 1.0), "measured")
    seconds = table_train_seconds(cell, train_slices, val_slices, done_steps) + inference
    if scale is not None and c.run.device != "cuda":
        return Estimate(CELL_OVERHEAD_S + seconds * scale, f"table x{scale:.2g}")
    return Estimate(CELL_OVERHEAD_S + seconds, "CPU table" if c.run.device == "cuda" else "table")


def nnunet_seconds(cell: Cell, score_slices: int) -> float:
    """Table seconds of an nnU-Net cell: its trainer's epochs of nnU-Net's 250 training and 50
    validation iterations, its set-up, and the prediction of the scored slices."""
    from samtune.study.nnunet_study import ITERATIONS_PER_EPOCH, VALIDATION_ITERATIONS, trainer_epochs

    assert cell.engine is not None  # only nnU-Net cells come here
    epoch = ITERATIONS_PER_EPOCH * NNUNET_ITERATION_S + VALIDATION_ITERATIONS * NNUNET_VALIDATION_ITERATION_S
    return NNUNET_SETUP_S + trainer_epochs(cell.engine["trainer"]) * epoch + NNUNET_PREDICT_SLICE_S * score_slices


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"
