"""The run directory's layout, and writing its files.

    RUN_DIR/
      config.yaml        resolved training configuration
      run.json           command line, versions, model spec, labels, start time
      weights/           trained weights: tuning.safetensors + tuning.json (samtune.methods)
      state/last.pt      full training state (resume); state/best.pt likewise
      metrics.jsonl      one JSON object per logged step / validation
      tensorboard/       the same scalars as TensorBoard events (when tensorboard is installed)
      curves.png         loss and validation Dice curves
      summary.json       final figures (best Dice, steps, wall time, peak memory)

`RunDir` is the one place these names are spelled. Reading and checking a run is in
`samtune.runs.reading`, rebuilding its model in `samtune.runs.model`.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samtune.atomic import atomic_path
from samtune.errors import UserError

CONFIG_FILE = "config.yaml"
INFO_FILE = "run.json"
WEIGHTS_DIR = "weights"
STATE_DIR = "state"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CURVES_FILE = "curves.png"
TENSORBOARD_DIR = "tensorboard"


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run directory (nothing is read or checked here)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def info_path(self) -> Path:
        return self.path / INFO_FILE

    @property
    def weights_dir(self) -> Path:
        return self.path / WEIGHTS_DIR

    @property
    def state_dir(self) -> Path:
        return self.path / STATE_DIR

    def state_file(self, name: str) -> Path:
        """Training state `name` ("last" or "best")."""
        return self.state_dir / f"{name}.pt"

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def curves_path(self) -> Path:
        return self.path / CURVES_FILE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD_DIR

    def has_checkpoint(self) -> bool:
        """A resumable training state is there."""
        return self.state_file("last").is_file()

    def is_finished(self) -> bool:
        """Training ran to its end (summary.json is the last file `train` writes)."""
        return self.summary_path.is_file()

    def is_empty(self) -> bool:
        return not self.path.is_dir() or not any(self.path.iterdir())

    # ------------------------------------------------------------ writing
    def create(self, overwrite: bool = False) -> None:
        """Create the directory empty; an existing non-empty one needs `overwrite`.

        Callers check everything else first (`samtune.outputs.check_output_folder`, the
        configuration, data and model), so a refused run leaves nothing behind.
        """
        if self.path.exists() and any(self.path.iterdir()):
            if not overwrite:
                raise UserError(f"run directory {self.path} already exists; pass --overwrite to replace it "
                                f"or --resume {self.path} to continue it")
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: Any) -> None:
        """The resolved configuration (a dataclass) as config.yaml."""
        from samtune.configs import save_config

        save_config(config, self.config_path)

    def write_info(self, extra: dict[str, Any]) -> None:
        """run.json: the command line, start time, versions and `extra` (model, labels...)."""
        info = {"command": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "versions": versions(), **extra}
        write_json(self.info_path, info)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.summary_path, summary)


def versions() -> dict[str, str]:
    import numpy
    import torch

    import samtune

    found = {"samtune": samtune.__version__, "python": platform.python_version(), "torch": torch.__version__,
             "numpy": numpy.__version__}
    for name in ("monai", "SimpleITK", "safetensors"):
        try:
            module = __import__(name)
            found[name] = getattr(module, "__version__", "?")
        except ImportError:
            pass
    return found


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
