"""Studies: grids of fine-tuning strategies x datasets -> results tables and plots.

    >>> from samtune.study import load_study, plan_study, run_study
    >>> config = load_study("cpu_prostate", ["train.optim.steps=50"])
    >>> print(format_plan(plan_study(config, "studies/p")))   # what `--dry-run` prints
    >>> outcome = run_study(config, "studies/p")               # results.csv, results.md, *.png

`samtune study STUDY.yaml` is the command-line form. Modules: `config` (the YAML),
`preflight` (loading and checking it), `grid` (cells), `state` (resume/skip), `cost` (estimates), `cell_job` (one cell, in its
own process), `runner`, `results` (results.csv), `table` (results.md), `plots`.
"""

from samtune.study.config import StudyConfig
from samtune.study.preflight import load_study
from samtune.study.runner import StudyOutcome, format_plan, plan_study, run_study

__all__ = ["StudyConfig", "StudyOutcome", "format_plan", "load_study", "plan_study", "run_study"]
