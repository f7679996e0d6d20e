"""`samtune strategies`: the study's fine-tuning strategies (and ours) with parameter counts."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "strategies",
        help="list fine-tuning strategies with trainable/total parameter counts",
        description=(
            "The study's 3 backbones x 2 components x 3 methods, plus the methods beyond it "
            "(dora), with the number of trainable and total parameters of each. Counts are "
            "computed on the meta device: no weights are needed."
        ),
    )
    parser.add_argument(
        "--model", metavar="NAME", action="append",
        help="count for this registered model instead of the study's backbones (repeatable)",
    )
    parser.add_argument(
        "--new-heads", action="store_true",
        help="count as if the number of classes differed from the pretrained decoder's "
        "(output heads always train)",
    )
    parser.set_defaults(func=run)


def _human(count: int) -> str:
    if count >= 1e6:
        return f"{count / 1e6:.2f}M"
    if count >= 1e3:
        return f"{count / 1e3:.1f}K"
    return str(count)


def format_counts(counts: list[tuple[str, str, str, int, int]]) -> str:
    """Rows of (backbone, component, method, trainable, total) as an aligned table."""
    headers = ("backbone", "component", "method", "trainable", "total", "trainable %")
    rows = [
        (
            backbone,
            component,
            method,
            f"{trainable:,} ({_human(trainable)})",
            f"{total:,} ({_human(total)})",
            f"{100 * trainable / total if total else 0.0:.3f}",
        )
        for backbone, component, method, trainable, total in counts
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    right = {3, 4, 5}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), line(tuple("-" * w for w in widths)), *map(line, rows)])


def run(args: argparse.Namespace) -> int:
    if args.model:  # computed: builds each model on the meta device (imports torch)
        from samtune.methods.counting import strategy_counts
        from samtune.methods.strategy import study_strategies

        counts: list[tuple[str, str, str, int, int]] = [(c.strategy.backbone, c.strategy.component, c.strategy.method, c.trainable, c.total)
                  for c in strategy_counts(study_strategies(tuple(args.model)), num_classes_changed=args.new_heads)]
    else:  # the study's backbones: precomputed (samtune.cli.listings), no torch
        from samtune.cli.listings import STRATEGY_ROWS_NEW_HEADS, STRATEGY_ROWS_PRETRAINED

        counts = STRATEGY_ROWS_NEW_HEADS if args.new_heads else STRATEGY_ROWS_PRETRAINED
    print(format_counts(counts))
    if not args.model:
        print(
            "\n3 backbones x 2 components x 3 methods (full, adapter, lora) = 18 study strategies;\n"
            "dora goes beyond the study. lite_medsam stands for the study's TinyViT backbone\n"
            "(MobileSAM's architecture with medical weights); see --model mobile_sam."
        )
    return 0
