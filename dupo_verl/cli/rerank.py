"""`dupo-verl rerank`: pick the candidate answer whose dual questions the model answers best."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

from dupo_verl.cli._types import parse_pairs, report_errors
from dupo_verl.files import atomic_write_text, check_outputs
from dupo_verl.generation.options import json_object
from dupo_verl.offline.cli_args import (
    add_common_arguments,
    add_task_module_argument,
    dual_options,
    job_options,
    job_settings,
    positive_int,
    primal_sampling,
)
from dupo_verl.offline.io import ROW_FORMATS, read_rows
from dupo_verl.offline.pipeline import settings_path
from dupo_verl.offline.report import all_failed_message, format_summary, print_quietly, summarize
from dupo_verl.offline.rerank import (
    RerankInput,
    RerankSettings,
    build_jobs,
    needs_redo,
    read_candidates,
    rerank_row,
)
from dupo_verl.tasks.registry import allow_task_modules, task_class


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rerank",
        help="choose among sampled answers by dual accuracy (inference-time DuPO)",
        description="Sample --n candidates per problem (or read them with --candidates FILE), score each by the "
        "dual's accuracy over the problem's dual questions (--dual-samples answers each), keep the best; ties go "
        "to the answer with more votes, then to the earlier candidate. Candidates sharing a final answer share "
        "its dual work. Rows are appended as they finish; --resume continues an interrupted run.",
    )
    parser.add_argument(
        "--input", required=True, type=Path, help=f"raw problems or prepared rows ({', '.join(ROW_FORMATS)})"
    )
    parser.add_argument(
        "--output", required=True, type=Path, help="results (.jsonl), one JSON row per problem"
    )
    parser.add_argument("--n", type=positive_int, default=16, help="candidates per problem (default 16)")
    parser.add_argument(
        "--candidates",
        type=Path,
        help='jsonl of given candidates, rows {"id": ..., "responses": [text, ...]} (skips sampling)',
    )
    parser.add_argument("--task", default="math", help="task for raw problems (default math)")
    parser.add_argument("--task-params", type=json_object, default={}, help="task parameters as JSON")
    add_task_module_argument(parser)
    parser.add_argument("--problem-key", default="problem", help="raw input: problem field")
    parser.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="raw input: column of a task input field, e.g. source=text for translation (repeatable)",
    )
    parser.add_argument(
        "--answer-key", default="answer", help="raw input: gold answer field (optional in the data)"
    )
    parser.add_argument("--id-key", default="id", help="input: id field (default: row position)")
    parser.add_argument("--max-duals", type=positive_int, help="dual questions per problem (default: all)")
    parser.add_argument(
        "--no-answer-sharing",
        action="store_true",
        help="judge every candidate separately (only to measure what sharing saves)",
    )
    parser.add_argument("--summary-json", type=Path, help="also write the summary as JSON")
    add_common_arguments(parser, temperature=0.8, dual_samples=8)
    parser.set_defaults(func=report_errors("rerank", run))


OUTPUT_FORMAT = ".jsonl"


def run(args: argparse.Namespace) -> int:
    from dupo_verl.generation.options import build_backend
    from dupo_verl.offline.pipeline import run_rows

    check_outputs(
        {
            "--output": args.output,
            "--summary-json": args.summary_json,
            "the settings record": settings_path(args.output),
        },
        [args.input, args.candidates],
    )
    if args.output.suffix.lower() != OUTPUT_FORMAT:  # the rows are appended as JSON lines, whatever the name
        raise ValueError(f"--output {args.output}: rerank writes JSON lines; give a {OUTPUT_FORMAT} path")
    allow_task_modules(args.task_modules)
    task_class(args.task)  # a mistyped --task stops here, naming the known tasks
    fields = parse_pairs(args.field, "--field")
    settings = RerankSettings(
        sampling=primal_sampling(args, args.n),
        dual=dual_options(args),
        max_duals=args.max_duals,
        share_answers=not args.no_answer_sharing,
    )
    spec = RerankInput(
        task=args.task,
        task_params=args.task_params,
        problem_key=args.problem_key,
        answer_key=args.answer_key,
        id_key=args.id_key,
        seed=args.seed,
        max_duals=args.max_duals,
        fields=fields,
    )
    recorded = job_settings(
        args,
        n=args.n,
        task=args.task,
        task_params=args.task_params,
        problem_key=args.problem_key,
        fields=fields,
        answer_key=args.answer_key,
        id_key=args.id_key,
        max_duals=args.max_duals,
        share_answers=not args.no_answer_sharing,
        given_candidates=args.candidates is not None,
    )
    options = job_options(args, args.output, "rerank", recorded)  # option errors before any reading
    candidates = read_candidates(args.candidates) if args.candidates else None
    jobs = build_jobs(read_rows(args.input, args.limit), spec, candidates)
    result = run_rows(
        jobs,
        key=lambda job: (job.index, job.id),
        worker=partial(_work, settings=settings),
        make_backend=partial(build_backend, args),
        options=options,
        digest=lambda job: job.digest,
        redo_row=needs_redo,
    )
    summary = summarize(result.rows)
    if result.resumed_rows or result.retried_rows:
        print_quietly(f"resumed {result.resumed_rows} rows; redid {result.retried_rows} failed or invalid rows")
    print_quietly(format_summary(summary))
    if args.summary_json:
        public = {k: v for k, v in summary.items() if not k.startswith("_")}
        if result.stats is not None:
            public["backend_calls_this_run"] = result.stats.as_dict()
        atomic_write_text(args.summary_json, json.dumps(public, indent=2, allow_nan=False) + "\n")
    failed = all_failed_message(result.rows)
    if failed:  # a run where nothing worked is not a result, whatever the summary's zeros say
        print(f"error: rerank: {failed}", file=sys.stderr)
        return 1
    return 0


async def _work(job: Any, generate: Any, settings: RerankSettings) -> dict[str, Any]:
    return await rerank_row(job, generate, settings)
