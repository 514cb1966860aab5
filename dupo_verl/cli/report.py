"""`dupo-verl report`: does the dual reward separate right from wrong answers? Numbers and a plot."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dupo_verl.cli._types import report_errors
from dupo_verl.files import atomic_write_text, check_outputs
from dupo_verl.offline.report import (
    all_failed_message,
    format_summary,
    load_results,
    plot_summary,
    print_quietly,
    summarize,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="summarise `dupo-verl rerank` results (selection accuracies, dual accuracy right vs wrong)",
        description="Prints the accuracy of the first candidate, the majority answer, the DuPO choice and pass@n "
        "(rows with a gold answer), the mean dual accuracy of right and wrong candidates and their AUROC. "
        "--plot draws the dual-accuracy distributions and the four accuracies.",
    )
    parser.add_argument("results", type=Path, help="output of `dupo-verl rerank` (jsonl)")
    parser.add_argument("--plot", type=Path, help="write a figure (png, pdf, svg)")
    parser.add_argument("--json", type=Path, help="write the summary as JSON")
    parser.set_defaults(func=report_errors("report", run))


PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def run(args: argparse.Namespace) -> int:
    check_outputs({"--plot": args.plot, "--json": args.json}, [args.results])
    if args.plot is not None and args.plot.suffix.lower() not in PLOT_FORMATS:
        raise ValueError(f"--plot {args.plot}: use one of {', '.join(PLOT_FORMATS)}")
    rows = load_results(args.results)
    summary = summarize(rows)
    print_quietly(format_summary(summary))
    if args.json:
        public = {k: v for k, v in summary.items() if not k.startswith("_")}
        atomic_write_text(args.json, json.dumps(public, indent=2, allow_nan=False) + "\n")
    if args.plot:
        print_quietly(f"plot: {plot_summary(summary, args.plot)}")
    failed = all_failed_message(rows)
    if failed:
        print(f"error: report: {failed}", file=sys.stderr)
        return 1
    return 0
