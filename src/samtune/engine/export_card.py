"""What a loader needs to use exported weights: written as JSON next to the file.

`samtune export --merge --out model.pth` writes ``model.json`` beside it. An automatic
(no-prompt) run changes the mask decoder: ``num_multimask_outputs`` becomes classes + 1
(mask tokens and output heads grow with it), so the official ``segment_anything``
builders, which hard-code 3, cannot load the file as it is. The card says how many
outputs to build, what each output channel means, how to prepare pixels and at which
input size, so that the weights are usable without samtune.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from torch import nn

from samtune.atomic import atomic_path

if TYPE_CHECKING:
    from samtune.models.sam import Sam

CARD_FORMAT = "samtune-export-card"
IMAGENET = {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]}


def card_path(weights_path: str | Path) -> Path:
    """``merged.pth`` -> ``merged.json`` (same folder, same stem)."""
    return Path(weights_path).with_suffix(".json")


def _run_dir_of(tuning_dir: Path) -> Path | None:
    """The run directory holding this tuning directory (config.yaml + run.json), if any."""
    for folder in (tuning_dir, tuning_dir.parent):
        if (folder / "config.yaml").is_file() and (folder / "run.json").is_file():
            return folder
    return None


def _normalisation(kind: str, window: Any, percentiles: Any) -> dict[str, Any]:
    if kind == "imagenet":
        how = "per channel (x - mean) / std on 0..255 pixels (grey images repeated to 3 channels)"
        return {"kind": "imagenet", **IMAGENET, "how": how}
    clip = (f"clip to the window {window} first" if window else
            f"clip to the {percentiles} intensity percentiles first" if percentiles else
            "the image's own min and max")
    return {"kind": "minmax", "how": f"(x - min) / (max - min) to [0, 1] per image, using {clip}; "
            "grey images repeated to 3 channels"}


def export_card(model: nn.Module, tuning_dir: str | Path, weights_path: str | Path) -> dict[str, Any]:
    """The card for `model` (rebuilt from `tuning_dir`) exported to `weights_path`."""
    from samtune.methods import get_strategy

    tuning_dir = Path(tuning_dir)
    sam = cast("Sam", model)  # export writes SAM checkpoints (a tuned Sam)
    strategy = get_strategy(model)
    assert strategy is not None  # load_tuned_model applied one
    outputs = int(sam.mask_decoder.num_multimask_outputs)
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "weights": Path(weights_path).name,
        "model": getattr(getattr(model, "spec", None), "name", None),
        "strategy": strategy.name,
        "num_multimask_outputs": outputs,
        "image_size": int(sam.image_size),
        "resize": f"longest side to {int(sam.image_size)} px (bilinear, no antialiasing), "
                  "then zero padding (after normalisation) at the bottom and right",
    }
    mode, classes, window, percentiles = None, None, None, None
    run_dir = _run_dir_of(tuning_dir)
    if run_dir is not None:
        import yaml

        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        info = json.loads((run_dir / "run.json").read_text())
        mode = config.get("task", {}).get("mode")
        classes = info.get("labels")
        window = config.get("data", {}).get("window")
        percentiles = config.get("data", {}).get("percentiles")
    card["mode"] = mode
    card["classes"] = {str(i): name for i, name in enumerate(classes or [], start=1)} or None
    card["normalisation"] = _normalisation(sam.normalization, window, percentiles)
    if mode == "automatic":
        card["outputs"] = (
            f"decode without prompts and multimask_output=True: {outputs} mask channels, channel 0 "
            "background and channel k class k; the label of a pixel is the argmax over channels"
        )
    else:
        card["outputs"] = ("one mask per prompt (multimask_output=False); foreground where the logit > 0")
    card["official_loader"] = (
        f"segment_anything: build Sam as build_sam_vit_* does, but with MaskDecoder(num_multimask_outputs={outputs}, "
        "...), then load_state_dict(torch.load(weights, weights_only=True))"
        if outputs != 3 else "segment_anything's build_sam_vit_* (or MobileSAM's TinyViT builder) loads it as it is"
    )
    return card


def write_export_card(card: dict[str, Any], path: str | Path) -> Path:
    """Write the card as JSON, atomically; returns its path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return path
