"""`samtune study`: run a grid of strategies x datasets and write the results table.

    samtune study cpu_prostate --out studies/prostate            # a shipped study
    samtune study my_study.yaml --set seeds=[0,1,2] --dry-run    # list cells and costs
    samtune study full_gpu --set backbones.sam_vit_h.checkpoint=sam_vit_h_4b8939.pth ...
"""

from __future__ import annotations

import argparse
import shlex
from importlib import resources
from pathlib import Path


def _shipped_studies() -> list[str]:
    folder = resources.files("samtune") / "recipes" / "studies"
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "study",
        help="run a grid of fine-tuning strategies x datasets; write results.csv/.md and plots",
        description=(
            "Train and score every cell of STUDY.yaml (backbones x components x methods x datasets x seeds, "
            "optionally x few-shot sizes and initial weights), each as an ordinary run directory under "
            "OUT/runs/. Invoking it again continues the study: finished cells are skipped, interrupted ones "
            "resumed, failed ones retried. Writes OUT/results.csv, OUT/results.md and PNG plots. Shipped "
            f"studies: {', '.join(_shipped_studies())} (samtune/recipes/studies). Exit code 1 when a cell failed."
        ),
    )
    parser.add_argument("study", nargs="?", help="study YAML, or the name of a shipped study (e.g. cpu_prostate)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a study value, e.g. --set train.optim.steps=50 or "
                        "--set backbones.sam_vit_b.checkpoint=PATH (repeatable)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="study folder (required to run; --dry-run without it looks in studies/<study name>)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the cells, their status and estimated cost; run nothing")
    parser.add_argument("--in-process", action="store_true",
                        help="run cells in this process instead of one child process each (for debugging; "
                        "peak memory is then this process's)")
    # --- parallel and cluster execution (issue 18; samtune.study.executors) ---
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="run up to N cells at once on this machine, each in its own process (default 1)")
    parser.add_argument("--gpus", metavar="0,1,...",
                        help="with --workers: one GPU per worker (default: CPU, each worker gets cores/N threads)")
    parser.add_argument("--executor", choices=("local", "slurm"), default="local",
                        help="local workers (default) or a SLURM job array through submitit (pip install "
                        "'samtune[slurm]'; resources from the study's executor: section)")
    parser.add_argument("--status", metavar="OUT", type=Path,
                        help="show each cell's state in the study folder OUT (queued, running where, done, "
                        "failed with its error) and exit; needs no STUDY")
    # --- end parallel and cluster execution ---
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samtune.errors import UserError
    from samtune.study.config import resolve_study
    from samtune.study.preflight import load_study
    from samtune.study.cost import format_seconds
    from samtune.study.runner import format_plan, plan_study, run_study
    from samtune.study.state import check_not_stale

    if args.status is not None:
        from samtune.study.status import study_status

        print(study_status(args.status))
        return 0
    if args.study is None:
        raise UserError("give a STUDY (a YAML file or a shipped study name), or --status OUT")
    from samtune.study.executors import local_slots, parse_gpus

    gpus = parse_gpus(args.gpus)
    if args.executor == "local":
        local_slots(args.workers, gpus)  # refuse bad --workers/--gpus before reading anything
    else:
        from samtune.study.slurm import require_submitit

        if args.workers != 1 or gpus:
            raise UserError("--workers and --gpus are for --executor local; with slurm, set executor.gpus_per_node "
                            "and executor.array_parallelism in the study")
        require_submitit()
    if args.out is None and not args.dry_run:
        stem = Path(args.study).stem if args.study.endswith((".yaml", ".yml")) else args.study
        raise UserError(f"give the study folder with --out DIR (e.g. --out studies/{stem}); "
                        "`--dry-run` lists the cells and their estimated cost first")
    config = load_study(args.study, args.overrides)
    if args.dry_run:
        out = args.out or Path("studies") / resolve_study(args.study).stem
        print(f"study folder {out}" + ("" if args.out else " (the usual place; give --out DIR to look elsewhere)"))
        from samtune.study.init_cost import format_producers

        made, seconds = format_producers(config, out)
        if made:
            print(f"made inside the study first (about {format_seconds(seconds)}):\n{made}")
        print(format_plan(plan_study(config, out)))
        return 0
    out = args.out
    planned = plan_study(config, out)
    check_not_stale(out, [p.cell for p in planned])
    todo = [p for p in planned if p.status != "done"]
    seconds = sum(p.estimate.seconds for p in todo if p.estimate is not None and p.status != "score")
    from samtune.study.init_cost import format_producers

    seconds += format_producers(config, out)[1]  # inits made inside the study first
    bases = sorted({p.estimate.basis for p in todo if p.estimate is not None})
    print(f"study folder {out}: {len(todo)} of {len(planned)} cell(s) to run, about {format_seconds(seconds)} "
          f"of training ({', '.join(bases) or 'nothing to train'}; see --dry-run); results in {out / 'results.md'}")
    words = ["samtune", "study", args.study, *(f"--set {o}" for o in args.overrides), "--out", str(out)]
    command = " ".join(shlex.quote(w) if not w.startswith("--set ") else "--set " + shlex.quote(w[6:]) for w in words)
    if args.executor == "slurm":
        from samtune.study.slurm import run_study_slurm

        outcome = run_study_slurm(config, out, command=command)
    else:
        outcome = run_study(config, out, isolate=not args.in_process, command=command, workers=args.workers,
                            gpus=gpus)
    done = sum(row["status"] == "done" for row in outcome.rows)
    print(f"{len(outcome.rows)} cells: {done} done ({len(outcome.skipped)} skipped as already done), "
          f"{len(outcome.failed)} failed this time; wrote {', '.join(str(p) for p in outcome.files)}")
    return 1 if outcome.failed else 0
