"""The run directory: the contract between train, eval, predict, export and study.

    >>> run = RunDir.open("runs/prostate").check()   # one line naming what is missing/damaged
    >>> run.settings.mode, run.labels                 # ("automatic", ("central", "peripheral"))
    >>> model = run.load_model("cpu")                 # base + strategy + tuned tensors

`RunLayout` (file names and writing: create, write_config, write_info, write_summary) is in
`samtune.runs.layout`; `RunDir` adds reading and checking (`samtune.runs.reading`).
"""

from samtune.runs.layout import (
    CONFIG_FILE,
    CURVES_FILE,
    INFO_FILE,
    METRICS_FILE,
    STATE_DIR,
    SUMMARY_FILE,
    TENSORBOARD_DIR,
    WEIGHTS_DIR,
    RunLayout,
    versions,
    write_json,
)
from samtune.runs.model import load_model
from samtune.runs.reading import RunDir, RunError, RunSettings

__all__ = [
    "CONFIG_FILE", "CURVES_FILE", "INFO_FILE", "METRICS_FILE", "STATE_DIR", "SUMMARY_FILE", "TENSORBOARD_DIR",
    "WEIGHTS_DIR", "RunDir", "RunError", "RunLayout", "RunSettings", "load_model", "versions", "write_json",
]
