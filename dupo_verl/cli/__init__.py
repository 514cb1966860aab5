"""`dupo-verl` command line. Each module in this package adds one subcommand.

A subcommand module defines `register(subparsers) -> None`, which adds its parser and sets
`func=<callable(args) -> int>` as the parser default. Modules are found automatically, so adding
a command never means editing this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from dupo_verl import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dupo-verl",
        description="DuPO (dual-task, label-free rewards) for verl: data preparation, dual-question "
        "filtering, reranking, reports and demos.",
    )
    parser.add_argument("--version", action="version", version=f"dupo-verl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C is the user's choice, not a crash: one line, no traceback
        print(f"dupo-verl {args.command}: interrupted; finished rows and files are kept (rerank, filter "
              "and demo continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
