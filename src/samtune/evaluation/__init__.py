"""samtune.evaluation: Dice, IoU, HD95 and NSD per case and class, 2D and 3D, and reports.

- `metrics`: the metric definitions and empty-mask rules (read its docstring);
- `accumulator`: `MetricAccumulator`, per-case rows and per-class summaries;
- `report`: ``per_case.csv``, ``summary.json`` and the printed table;
- `evaluate`: `evaluate_cases` over in-memory cases and `write_report`;
- `folders`: `evaluate_folders` for ``samtune eval --pred DIR --gt DIR`` (imports the
  readers, so it is not imported here);
- `folder_report`: `score_folders`, that whole command as one call (match, score, write
  the reports, and the note and warnings to show).
"""

from samtune.evaluation.accumulator import MetricAccumulator
from samtune.evaluation.evaluate import EvalCase, evaluate_cases, write_report
from samtune.evaluation.metrics import METRIC_NAMES, ClassMetrics, binary_metrics, case_metrics

__all__ = [
    "METRIC_NAMES",
    "ClassMetrics",
    "EvalCase",
    "MetricAccumulator",
    "binary_metrics",
    "case_metrics",
    "evaluate_cases",
    "write_report",
]
