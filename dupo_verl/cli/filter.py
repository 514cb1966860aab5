"""`dupo-verl filter`: keep the dual questions that are answerable and unique (the paper's selection)."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

from dupo_verl.cli._types import float_in, report_errors
from dupo_verl.files import atomic_write_text, check_outputs
from dupo_verl.offline.cli_args import (
    add_common_arguments,
    add_task_module_argument,
    dual_options,
    job_options,
    job_settings,
    positive_int,
    primal_sampling,
)
from dupo_verl.offline.filter import (
    OUTPUT_DIGEST,
    FilterSettings,
    file_sha256,
    filter_report,
    filter_row,
    jobs_from_rows,
    refuse_foreign_outputs,
    write_filtered,
)
from dupo_verl.offline.io import ROW_FORMATS, read_rows
from dupo_verl.offline.pipeline import settings_path
from dupo_verl.tasks.registry import allow_task_modules


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "filter",
        help="keep only answerable and unique dual questions (no gold labels used)",
        description="For each prepared problem: sample --candidates solutions, take the distinct final answers, "
        "answer every dual question --dual-samples times per distinct answer, and keep a question iff exactly "
        "one distinct answer recovers the hidden value (at least one: answerable; at most one: unique). "
        "Problems left with no question are dropped. A problem with a question whose dual calls all failed "
        "(no verdict) is counted failed, left out, and redone by --resume. Writes the kept rows in the input's "
        "schema and format, a resumable work file and a JSON report; existing files are replaced only with "
        "--overwrite (or, with --resume, this job's own output and report).",
    )
    parser.add_argument("--input", required=True, type=Path, help=f"prepared rows ({', '.join(ROW_FORMATS)})")
    parser.add_argument("--output", required=True, type=Path, help="filtered rows, same format as the input")
    parser.add_argument(
        "--candidates", type=positive_int, default=32, help="candidate solutions per problem (default 32)"
    )
    parser.add_argument(
        "--recover-threshold",
        type=float_in(0, 1),
        default=0.5,
        help="an answer recovers the hidden value when its dual accuracy over the K samples reaches this; "
        "in [0, 1]",
    )
    parser.add_argument("--work", type=Path, help="row-by-row work file (default: OUTPUT.work.jsonl)")
    parser.add_argument("--report", type=Path, help="report file (default: OUTPUT.report.json)")
    add_task_module_argument(parser)
    add_common_arguments(parser, temperature=1.0, dual_samples=1)
    parser.set_defaults(func=report_errors("filter", run))


def run(args: argparse.Namespace) -> int:
    from dupo_verl.generation.options import build_backend
    from dupo_verl.offline.pipeline import run_rows

    if args.input.suffix.lower() not in ROW_FORMATS:
        raise ValueError(f"--input must be a prepared {', '.join(ROW_FORMATS)} file, got {args.input}")
    if args.output.suffix.lower() != args.input.suffix.lower():
        raise ValueError(f"--output must have the input's format ({args.input.suffix}), got {args.output}")
    work = args.work or args.output.with_name(args.output.name + ".work.jsonl")
    report_path = args.report or args.output.with_name(args.output.name + ".report.json")
    check_outputs(
        {
            "--output": args.output,
            "the work file": work,
            "the report": report_path,
            "the settings record": settings_path(work),
        },
        [args.input],
    )
    allow_task_modules(args.task_modules)
    settings = FilterSettings(
        sampling=primal_sampling(args, args.candidates),
        dual=dual_options(args),
        recover_threshold=args.recover_threshold,
    )
    options = job_options(args, work, "filter", job_settings(args, **settings.as_dict()))  # option errors first
    refuse_foreign_outputs(args.output, report_path, work, resume=args.resume, overwrite=args.overwrite)
    jobs = jobs_from_rows(read_rows(args.input, args.limit))
    result = run_rows(
        jobs,
        key=lambda job: (job.index, job.id),
        worker=partial(_work, settings=settings),
        make_backend=partial(build_backend, args),
        options=options,
        digest=lambda job: job.digest,
    )
    kept = write_filtered(args.input, args.output, result.rows, args.limit)
    report = filter_report(result.rows, settings)
    report.update(
        input=str(args.input),
        output=str(args.output),
        work=str(work),
        rows_written=kept,
        **{OUTPUT_DIGEST: file_sha256(args.output) if kept else None},
        resumed_rows=result.resumed_rows,
        retried_rows=result.retried_rows,
    )
    if result.stats is not None:
        report["backend_calls_this_run"] = result.stats.as_dict()
    atomic_write_text(report_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _print_report(report, report_path)
    if not kept:  # as `prepare`: an empty data set is no result, and an existing output stays as it was
        print(f"error: no row was kept; nothing written (see {report_path})", file=sys.stderr)
        return 1
    return 0


async def _work(job: Any, generate: Any, settings: FilterSettings) -> dict[str, Any]:
    return await filter_row(job, generate, settings)


def _print_report(report: dict[str, Any], path: Path) -> None:
    p, q, g = report["problems"], report["questions"], report["generations"]
    print(
        f"problems: {p['in']} in, {p['kept']} kept, {p['dropped_no_question_left']} dropped (no question left), "
        f"{p['dropped_failed']} failed, {p['dropped_invalid']} invalid\n"
        f"dual questions: {q['in']} in, {q['kept']} kept, {q['dropped_unanswerable']} unanswerable, "
        f"{q['dropped_not_unique']} not unique, {q['dropped_failed']} failed\n"
        f"generations: {g.get('primal_samples', 0)} candidate samples, {g.get('dual_requests', 0)} dual requests "
        f"({g.get('dual_samples', 0)} samples), {g.get('failed_requests', 0)} failed requests\n"
        f"report: {path}"
    )
    for failed in report["failed_rows"][:5]:
        where, error = f"row {failed['index']} (id {failed['id']}): ", str(failed["error"])
        # an invalid row's error names its row already; say it once
        print(f"  not filtered: {error if error.startswith(where) else where + error}", file=sys.stderr)
    if report["failed_rows"]:
        print(
            f"  {len(report['failed_rows'])} rows not filtered: rerun with the same options and --resume to redo them",
            file=sys.stderr,
        )
