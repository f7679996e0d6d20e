"""Wall time of the two producer stages of the `setups_cpu` study (setup-2 training, setup-3
pretraining), run as the study runs them, without the 18 cells.

    python benchmarks/setups_producers.py --out /tmp/setups_producers [--only expansive|agnostic]

Prints each stage's wall seconds and seconds per step; metrics.jsonl of each run (under
OUT/inits/<name>/) shows the progress of a stage that is still running.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from samtune.study.preflight import load_study
from samtune.study.inits import producer_job, producer_status, producers, run_producer_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", choices=["expansive", "agnostic"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    config = load_study("setups_cpu", args.overrides)
    for name, producer in producers(config, args.out).items():
        if args.only and name != args.only:
            continue
        status = producer_status(producer)
        if status == "done":
            continue
        producer.write_case_lists()
        started = time.monotonic()
        run_producer_job(producer_job(producer, status))
        seconds = time.monotonic() - started
        steps = producer.config.optim.steps
        print(json.dumps({"init": name, "kind": producer.kind, "steps": steps, "wall_s": round(seconds, 1),
                          "s_per_step": round(seconds / steps, 2)}), flush=True)


if __name__ == "__main__":
    main()
