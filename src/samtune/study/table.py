"""``results.md``: the study's table, in the form of Gu et al.'s: strategies as rows,
datasets as columns, mean Dice, the best per column in bold, and the mean rank.

Ranks are per column (dataset): 1 for the highest mean Dice, ties sharing the mean of
their ranks; a strategy's mean rank is over the columns where it has a result (a note
says when that is fewer than all). With a few-shot axis there is one table per size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from samtune.atomic import atomic_path
from samtune.study.results import Aggregate


def ranks(values: dict[str, float]) -> dict[str, float]:
    """Rank 1 = highest value; tied values share the mean of their ranks."""
    ordered = sorted(values, key=lambda key: -values[key])
    result: dict[str, float] = {}
    position = 0
    while position < len(ordered):
        end = position
        while end + 1 < len(ordered) and values[ordered[end + 1]] == values[ordered[position]]:
            end += 1
        for key in ordered[position : end + 1]:
            result[key] = (position + end) / 2 + 1
        position = end + 1
    return result


def human_count(count: int | None) -> str:
    if count is None:
        return "-"
    if count >= 1e6:
        return f"{count / 1e6:.2f}M"
    if count >= 1e3:
        return f"{count / 1e3:.1f}K"
    return str(count)


def shots_label(shots: int | None) -> str:
    return "all" if shots is None else str(shots)


def _cell_text(entry: Aggregate, best: bool) -> str:
    if entry.dice is None:
        return "failed" if entry.n_failed else "pending"
    text = f"{entry.dice:.3f}" + (f" ± {entry.std:.3f}" if entry.std is not None else "")
    text = f"**{text}**" if best else text
    if entry.n_done < entry.n_planned:
        text += f" ({entry.n_done} of {entry.n_planned} {'folds' if entry.std_over == 'folds' else 'seeds'})"
    return text


def _trainable_text(entries: list[Aggregate]) -> str:
    counts = sorted({e.trainable for e in entries if e.trainable is not None})
    if not counts:
        return "-"
    return human_count(counts[0]) if len(counts) == 1 else f"{human_count(counts[0])}–{human_count(counts[-1])}"


def table_rows(aggregates: list[Aggregate], shots: int | None) -> tuple[list[str], list[dict[str, Any]]]:
    """(datasets, rows) of one few-shot size; each row: strategy, cells, mean rank."""
    chosen = [a for a in aggregates if a.shots == shots]
    datasets = list(dict.fromkeys(a.dataset for a in chosen))
    strategies = list(dict.fromkeys(a.strategy for a in chosen))
    by_key = {(a.strategy, a.dataset): a for a in chosen}
    # Rounded so that float noise (0.7 vs 0.7000000000000001 from averaging seeds) is a tie.
    column_ranks = {
        d: ranks({s: round(dice, 9) for s in strategies
                  if (s, d) in by_key and (dice := by_key[s, d].dice) is not None})
        for d in datasets
    }
    rows = []
    for strategy in strategies:
        entries = [by_key[strategy, d] for d in datasets if (strategy, d) in by_key]
        ranked = [column_ranks[d][strategy] for d in datasets if strategy in column_ranks[d]]
        rows.append({
            "strategy": strategy,
            "trainable": _trainable_text(entries),
            "cells": {d: by_key.get((strategy, d)) for d in datasets},
            "mean_rank": sum(ranked) / len(ranked) if ranked else None,
            "ranked_in": len(ranked),
            "best": {d for d in datasets if column_ranks[d].get(strategy) == min(column_ranks[d].values(), default=0)},
        })
    return datasets, rows


def _across(row: dict[str, Any], datasets: list[str]) -> str:
    """Mean Dice over the datasets with its range: the spread between, e.g., two directions."""
    values = [row["cells"][d].dice for d in datasets if row["cells"][d] is not None]
    if len(values) < len(datasets) or any(v is None for v in values):
        return "-"
    return f"{sum(values) / len(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def format_table(aggregates: list[Aggregate], shots: int | None) -> str:
    datasets, rows = table_rows(aggregates, shots)
    across = len(datasets) > 1
    lines = [
        "| strategy | trainable | " + " | ".join(datasets) + (" | mean (range)" if across else "") + " | mean rank |",
        "|---|---:|" + "---:|" * (len(datasets) + across) + "---:|",
    ]
    for row in rows:
        cells = [_cell_text(row["cells"][d], d in row["best"]) if row["cells"][d] else "-" for d in datasets]
        if across:
            cells.append(_across(row, datasets))
        rank = "-" if row["mean_rank"] is None else f"{row['mean_rank']:.1f}"
        if row["mean_rank"] is not None and row["ranked_in"] < len(datasets):
            rank += f" ({row['ranked_in']} of {len(datasets)})"
        lines.append(f"| {row['strategy']} | {row['trainable']} | " + " | ".join(cells) + f" | {rank} |")
    return "\n".join(lines)


def _std_note(aggregates: list[Aggregate]) -> str:
    kinds = {a.std_over for a in aggregates if a.dice is not None}
    if kinds == {"seeds"}:
        return "± the standard deviation over seeds"
    if kinds == {"folds"}:
        return "± the standard deviation over cross-validation folds (and seeds): the mean and spread over folds"
    if kinds == {"cases"}:
        return "± the standard deviation over the scored cases, one seed per cell"
    over = {"seeds": "over seeds", "folds": "over cross-validation folds (cross-validated datasets)",
            "cases": "over the scored cases where only one seed" + (" or fold" if "folds" in kinds else "") + " finished"}
    return "± the standard deviation " + ", or ".join(over[k] for k in ("seeds", "folds", "cases") if k in kinds)


def format_results(aggregates: list[Aggregate], rows: list[dict[str, Any]], title: str, scored_on: set[str],
                   command: str | None = None) -> str:
    """The whole ``results.md``: the table(s), how to read them, and the failures."""
    parts = [f"# {title}", ""]
    if command:
        parts += ["Produced by:", "", "```bash", command, "```", ""]
    where = " and ".join(sorted(scored_on)) or "val"
    parts.append(
        f"Mean Dice over the cases of each dataset's {where} source, averaged over classes "
        f"({_std_note(aggregates)}). Bold: the best of each column. With several datasets, `mean (range)` is "
        "the mean over them and the lowest and highest of them. Mean rank: 1 is best, over the datasets. "
        "`trainable`: trainable parameters. Per-cell figures (IoU, HD95, NSD, time, memory) are in results.csv."
    )
    if any(row.get("scored_on") == "val" and "__fold" in str(row.get("cell")) for row in rows):  # grid.cell_id
        parts.append(
            "\nCross-validated datasets without a test source are scored on each fold's held-out patients, "
            "which also chose that fold's best checkpoint (somewhat optimistic); no test source was given."
        )
    if any(row.get("setup") for row in rows):  # an inits axis (samtune.study.inits)
        parts.append(
            "\nRows are labelled by the setup their cells start from: setup 1 = the foundation model's weights, "
            "setup 2 (task-expansive) = first trained with prompts on many labelled datasets, setup 3 "
            "(task-agnostic) = image encoder first pretrained self-supervised on unlabeled images."
        )
    if "val" in scored_on:
        parts.append(
            "\nScored on the validation source, which also chose each run's best checkpoint: the figures are "
            "somewhat optimistic. Give datasets a `test` source for held-out scores."
        )
    shot_values = list(dict.fromkeys(a.shots for a in aggregates))
    for shots in shot_values:
        if len(shot_values) > 1 or shots is not None:
            parts += ["", f"## {shots_label(shots)} training case(s)" if shots is not None else "## all training cases"]
        parts += ["", format_table(aggregates, shots)]
    failed = [row for row in rows if row["status"] == "failed"]
    pending = [row for row in rows if row["status"] == "pending"]
    if failed:
        parts += ["", f"## Failed cells ({len(failed)})", ""]
        parts += [f"- `{row['cell']}`: {row['error']}" for row in failed]
    if pending:
        parts += ["", f"{len(pending)} cell(s) not run yet; run the same command again to continue."]
    return "\n".join(parts) + "\n"


def write_results_md(text: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
