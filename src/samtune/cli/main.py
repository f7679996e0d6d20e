"""`samtune` entry point.

Each subcommand lives in its own module under `samtune.cli` and exposes
`add_parser(subparsers)`, which registers an argparse sub-parser whose `func`
default receives the parsed namespace. Heavy imports (torch) happen inside `func`
so that `samtune --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from samtune.errors import UserError


class _VersionAction(argparse.Action):
    """`--version`, looking the version up only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from samtune import __version__

        print(f"samtune {__version__}")
        parser.exit()

# Order here is the order in `samtune --help`.
SUBCOMMAND_MODULES = [
    "samtune.cli.demo",
    "samtune.cli.train",
    "samtune.cli.pretrain",
    "samtune.cli.segment",
    "samtune.cli.predict",
    "samtune.cli.eval",
    "samtune.cli.study",
    "samtune.cli.models",
    "samtune.cli.strategies",
    "samtune.cli.export",
    "samtune.cli.data",
    "samtune.cli.view",
    "samtune.cli.nnunet",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samtune",
        description="Fine-tune, evaluate and apply SAM-family models on medical images.",
    )
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:  # subcommand not built yet
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except UserError as error:
        if args.debug:
            raise
        print(f"samtune: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("samtune: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
