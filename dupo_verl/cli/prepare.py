"""`dupo-verl prepare {math,translation,span,two-sum,task}`: raw data -> verl parquet with dual questions.

Each command prints its summary and writes it to `<output>.summary.json`; `--val-fraction F`
also writes `<stem>_val.parquet` beside the output (verl's `data.val_files`). Exit status: 0 done,
1 stopped by `--strict` or nothing to write, 2 unusable input or options (one `error:` line).

Files: `--output` must end in `.parquet`. An output that is an input (same path, symlink,
relative spelling, hard link) is refused before any work, and so is an existing output, `_val` or
summary file unless `--overwrite` is given (an earlier run's data is never replaced by accident).
With `--overwrite`, after a completed run the train and val paths hold exactly this run's rows: a
train or `_val` file this run does not write (no row kept; `--val-fraction 0` after a split) is
removed and listed under `removed` in the summary, so an earlier run's rows never pass for this
run's. `--strict` stops without touching any file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path

from dupo_verl.cli._types import MAX_COUNT, float_in, int_in, nonblank, parse_pairs, report_errors
from dupo_verl.data.prepare import PrepareConfig, StrictError, prepare, summary_path, val_path
from dupo_verl.data.readers import FORMATS, InputError, RawRecord, open_source
from dupo_verl.data.rows import DEFAULT_AGENT, RowOptions
from dupo_verl.files import check_outputs, refuse_existing
from dupo_verl.tasks import get_task
from dupo_verl.tasks.inputs import data_source
from dupo_verl.tasks.registry import allow_task_modules
from dupo_verl.tasks.translation import DEFAULT_PARTIAL_COPY_THRESHOLD

MAX_TIMEOUT = 600.0  # seconds; a longer bound only hides a stuck comparison
# two-sum rows, all held in memory before writing (about 1.5 KB each: 10**6 is about 2 GB, 10**7 would
# need about 15 GB); far above any CPU-sized use
MAX_PROBLEMS = 10**6
MAX_OPERAND = 10**9
MAX_SEED = 2**63 - 1  # as `rerank --seed`: any seed a 64-bit field can hold


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="turn raw data into verl parquet with DuPO dual questions",
        description="Turn raw data (jsonl, json, parquet, csv, txt or a saved `datasets` folder) into verl "
        "parquet whose rows carry DuPO dual questions in extra_info['dupo'].",
    )
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)

    math = tasks.add_parser("math", help="math problems: hide one number per dual question")
    _input_args(math)
    math.add_argument(
        "--problem-key", type=nonblank, default="problem", help="column holding the problem (default: problem)"
    )
    math.add_argument(
        "--answer-key", type=nonblank, default=None,
        help="column holding the gold answer (optional; evaluation only)",
    )
    math.add_argument(
        "--timeout",
        type=float_in(0, MAX_TIMEOUT, low_open=True),
        default=2.0,
        help=f"seconds for one symbolic answer comparison, in (0, {MAX_TIMEOUT}]",
    )
    _common_args(math, max_duals=8)
    math.set_defaults(func=report_errors("prepare math", _run_math))

    tr = tasks.add_parser("translation", help="translation with back-translation as the dual")
    _input_args(tr)
    tr.add_argument("--src-lang", required=True, help="FLORES code of the source, e.g. eng_Latn")
    tr.add_argument("--tgt-lang", required=True, help="FLORES code of the target, e.g. zho_Hans")
    tr.add_argument(
        "--src-name", type=nonblank, default=None, help="readable source language name (default: from the code)"
    )
    tr.add_argument(
        "--tgt-name", type=nonblank, default=None, help="readable target language name (default: from the code)"
    )
    tr.add_argument("--similarity", default="chrf", choices=["chrf", "bleu", "chrf++"])
    tr.add_argument(
        "--language-check", default=None,
        help="guard on the target language of answers: auto (default), off, a detector name or module:function "
        "(a function text -> label, for a language no detector knows)",
    )
    tr.add_argument(
        "--language-check-min-letters", type=int_in(0, MAX_COUNT), default=None,
        help="answers with fewer letters are checked only for the source language (default 40, where the "
        "default detector is reliable; 0 checks every answer, for a detector reliable on short text)",
    )
    tr.add_argument(
        "--source-check-min-letters", type=int_in(0, MAX_COUNT), default=None,
        help="shorter answers than --language-check-min-letters but with at least this many letters are "
        "rejected when labelled the source language (default 20; shorter ones pass unchecked)",
    )
    tr.add_argument(
        "--copy-threshold", default=None,
        help="chrF against the source at or above which an answer is a near-copy, in (0, 1]; 0 or off: no check",
    )
    tr.add_argument(
        "--partial-copy-threshold", default=None,
        help="share of the answer copied from the source (runs of its lowercase words) at or above which "
        f"it is a partial copy, in (0, 1]; 0 or off: no check (default {DEFAULT_PARTIAL_COPY_THRESHOLD})",
    )
    tr.add_argument(
        "--source-key", type=nonblank, default="text", help="column holding the source sentence (txt input: text)"
    )
    tr.add_argument(
        "--reference-key", type=nonblank, default=None, help="column holding a reference translation (evaluation only)"
    )
    tr.add_argument("--reference", type=nonblank, default=None, help="line-aligned reference file for plain-text input")
    _common_args(tr, max_duals=1)
    tr.set_defaults(func=report_errors("prepare translation", _run_translation))

    span = tasks.add_parser("span", help="QA / summarization: hide a keyword or a sentence")
    _input_args(span)
    span.add_argument("--mode", default="question", choices=["question", "document"])
    span.add_argument(
        "--similarity",
        default=None,
        choices=["token_f1", "rouge_l"],
        help="default: token_f1 for questions, rouge_l for documents",
    )
    span.add_argument("--text-key", type=nonblank, default="text", help="column holding the question or document")
    span.add_argument(
        "--answer-key", type=nonblank, default=None, help="column holding a gold answer / summary (evaluation only)"
    )
    span.add_argument(
        "--lines-per-document",
        type=int_in(1, 10**6),
        default=1,
        help="plain-text input: join this many consecutive lines into one document",
    )
    _common_args(span, max_duals=4)
    span.set_defaults(func=report_errors("prepare span", _run_span))

    custom = tasks.add_parser(
        "task", help="any registered task, e.g. your own (see dupo_verl/tasks/README.md)"
    )
    custom.add_argument("--name", required=True, help="registered task name")
    custom.add_argument(
        "--import",
        dest="imports",
        type=nonblank,
        action="append",
        default=[],
        metavar="MODULE",
        help="module to import first, registering its tasks; also allows --name MODULE:Class (repeatable)",
    )
    custom.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="task parameter; VALUE is read as JSON when it parses, else as text (repeatable)",
    )
    custom.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="column of a task input field (repeatable)",
    )
    _input_args(custom)
    _common_args(custom, max_duals=8)
    custom.set_defaults(func=report_errors("prepare task", _run_custom))

    two = tasks.add_parser(
        "two-sum", help="generate the paper's two-sum toy problems (A + B; dual recovers B)"
    )
    two.add_argument("--output", type=parquet_output, required=True, help="train parquet to write (.parquet)")
    two.add_argument(
        "--num-problems", type=int_in(1, MAX_PROBLEMS), required=True, help="distinct (A, B) pairs to draw"
    )
    two.add_argument("--operand-min", type=int_in(0, MAX_OPERAND), default=0, help=f"in [0, {MAX_OPERAND}]")
    two.add_argument("--operand-max", type=int_in(0, MAX_OPERAND), default=99, help=f"in [0, {MAX_OPERAND}]")
    two.add_argument(
        "--strict-format", action="store_true", help="task param strict: a reply must be exactly one integer"
    )
    two.add_argument(
        "--hide",
        choices=("b", "a", "both"),
        default="b",
        help="task param hide: the operand(s) the dual recovers (both: two dual questions, an ensemble)",
    )
    _common_args(two, max_duals=None)
    two.set_defaults(func=report_errors("prepare two-sum", _run_two_sum))


def _input_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=nonblank, required=True, help="input file or saved `datasets` folder")
    parser.add_argument("--output", type=parquet_output, required=True, help="train parquet to write (.parquet)")
    parser.add_argument(
        "--format", default=None, choices=FORMATS, help="input format (default: from the suffix)"
    )
    parser.add_argument("--split", type=nonblank, default=None, help="split of a saved `datasets` DatasetDict")
    parser.add_argument("--id-key", type=nonblank, default="id", help="column copied to extra_info.id when present")
    parser.add_argument(
        "--data-source",
        type=nonblank,
        default=None,
        help="data_source of the rows (default: dupo/<task>/<input stem>; translation: "
        "dupo/translation/<src>-<tgt>)",
    )


def _common_args(parser: argparse.ArgumentParser, max_duals: int | None) -> None:
    parser.add_argument(
        "--seed", type=int_in(0, MAX_SEED), default=0, help="seed for names, wordings and the val split"
    )
    parser.add_argument(
        "--val-fraction",
        type=float_in(0, 1, high_open=True),
        default=0.0,
        help="share of rows written to <stem>_val.parquet beside the output",
    )
    if max_duals is not None:
        parser.add_argument(
            "--max-duals-per-problem",
            type=int_in(1, 10**6),
            default=max_duals,
            help=f"cap on dual questions per row (default: {max_duals})",
        )
        parser.add_argument(
            "--keep-unmaskable",
            action="store_true",
            help="keep rows without any dual question (e.g. for validation by gold label)",
        )
        parser.add_argument("--dedup", action="store_true", help="skip rows identical to an earlier one")
    parser.add_argument(
        "--strict", action="store_true", help="stop at the first bad row (nothing is written)"
    )
    parser.add_argument(
        "--agent-name", type=nonblank, default=DEFAULT_AGENT, help=f"agent_name column (default: {DEFAULT_AGENT})"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output (and its _val and summary files); without it they are refused",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parquet_output(text: str) -> str:
    """argparse type of `--output`: a path ending in .parquet (prepare writes parquet; a file named
    .jsonl holding parquet would mislead every later reader)."""
    nonblank(text)
    if Path(text).suffix.lower() != ".parquet":
        raise argparse.ArgumentTypeError(f"must end in .parquet (prepare writes parquet), got {text!r}")
    return text


def _run_math(args: argparse.Namespace) -> int:
    return _run(
        args,
        "math",
        {"timeout": args.timeout},
        keys={"problem": args.problem_key, **({"answer": args.answer_key} if args.answer_key else {})},
    )


def _run_translation(args: argparse.Namespace) -> int:
    if args.language_check and ":" in args.language_check:  # a `module:function` detector named on this command line is allowed
        try:
            allow_task_modules([args.language_check.partition(":")[0]])
        except ImportError as exc:
            return _fail(ValueError(f"--language-check {args.language_check}: cannot import its module ({exc})"), 2)
    params = {
        "src_lang": args.src_lang,
        "tgt_lang": args.tgt_lang,
        "similarity": args.similarity,
        "src_name": args.src_name,
        "tgt_name": args.tgt_name,
        "language_check": args.language_check,
        "copy_threshold": _threshold(args.copy_threshold),
        "partial_copy_threshold": _threshold(args.partial_copy_threshold),
        "language_check_min_letters": args.language_check_min_letters,
        "source_check_min_letters": args.source_check_min_letters,
    }
    keys = {"source": args.source_key}
    if args.reference_key or args.reference:
        keys["reference"] = args.reference_key or "reference"
    return _run(args, "translation", params, keys, reference=args.reference)


def _threshold(text: str | None) -> float | str | None:
    """`--copy-threshold` / `--partial-copy-threshold` as the task param: a number, "off", or None
    (the task's default)."""
    if text is None or text == "off":
        return text
    try:
        return float(text)
    except ValueError:
        return text  # the task names the option and the bad value


def _run_span(args: argparse.Namespace) -> int:
    keys = {"text": args.text_key, **({"answer": args.answer_key} if args.answer_key else {})}
    return _run(
        args,
        "span",
        {"mode": args.mode, "similarity": args.similarity},
        keys,
        lines_per_record=args.lines_per_document,
    )


def _param_value(key: str, text: str) -> object:
    """A `--param` VALUE: JSON when it parses, else the text; a NaN or infinite number is refused
    (it would pass for a setting), and so is JSON too deep or too long to read."""

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise ValueError(f"--param {key}: {number} is not a finite number")
        return value

    try:
        return json.loads(text, parse_float=finite, parse_constant=finite)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        raise ValueError(f"--param {key}: JSON nested too deeply to read") from None
    except ValueError as exc:
        message = str(exc) if str(exc).startswith("--param") else f"--param {key}: {str(exc).split(';')[0]}"
        raise ValueError(message) from None


def _run_custom(args: argparse.Namespace) -> int:
    try:
        allow_task_modules(args.imports)
        params = {key: _param_value(key, text) for key, text in parse_pairs(args.param, "--param").items()}
        keys = parse_pairs(args.key, "--key")
        blank = sorted(field for field, column in keys.items() if not column.strip())
        if blank:
            raise ValueError(f"--key {blank[0]}= names no column; give FIELD=COLUMN")
    except (ImportError, ValueError) as exc:
        return _fail(exc, 2)
    return _run(args, args.name, params, keys)


def _run_two_sum(args: argparse.Namespace) -> int:
    from dupo_verl.tasks.two_sum import generate_problems

    try:
        problems = generate_problems(args.num_problems, args.operand_min, args.operand_max, args.seed)
    except ValueError as exc:
        return _fail(exc, 2)
    records = [RawRecord(i, data=p) for i, p in enumerate(problems)]
    args.max_duals_per_problem, args.keep_unmaskable, args.dedup = None, False, False
    settings = {
        "num_problems": args.num_problems,
        "operand_min": args.operand_min,
        "operand_max": args.operand_max,
    }
    return _write(
        args,
        "two_sum",
        {"strict": args.strict_format, "hide": args.hide},
        {},
        records,
        len(records),
        "two_sum",
        settings,
    )


def _run(args, task_name, params, keys, reference=None, lines_per_record=1) -> int:
    try:
        source = open_source(
            args.input, args.format, args.split, lines_per_record=lines_per_record, reference=reference
        )
    except InputError as exc:
        return _fail(exc, 2)
    settings = {"input": str(args.input)}
    return _write(args, task_name, params, keys, source.records, source.total, source.stem, settings)


def _write(args, task_name, params, keys, records: Iterable[RawRecord], total, stem, settings) -> int:
    params = {k: v for k, v in params.items() if v is not None}
    output = Path(args.output)
    outputs = {"--output": output, "the val file": val_path(output), "the summary": summary_path(output)}
    check_outputs(outputs, [getattr(args, "input", None), getattr(args, "reference", None)])
    if not args.overwrite:  # an earlier run's files (a stale _val file too) go only when the user says so
        refuse_existing(outputs, "pass --overwrite to replace it or choose another --output")
    try:
        task = get_task(task_name, **params)
        rows = RowOptions(
            data_source=getattr(args, "data_source", None) or data_source(task, stem),
            keys=keys,
            id_key=getattr(args, "id_key", "id"),
            seed=args.seed,
            max_duals=args.max_duals_per_problem,
            agent_name=args.agent_name,
            keep_unmaskable=args.keep_unmaskable,
        )
        settings = {
            **settings,
            "seed": args.seed,
            "val_fraction": args.val_fraction,
            "max_duals_per_problem": args.max_duals_per_problem,
            "keys": keys,
        }
        config = PrepareConfig(
            task=task,
            rows=rows,
            val_fraction=args.val_fraction,
            strict=args.strict,
            dedup=args.dedup,
            progress=not args.no_progress,
            settings=settings,
        )
    except (ValueError, TypeError, KeyError) as exc:
        return _fail(exc, 2)
    try:
        summary = prepare(records, Path(args.output), config, total=total)
    except StrictError as exc:
        return _fail(exc, 1)
    print(summary.format())
    if not summary.rows_kept:
        print("error: no row was kept; nothing written (see the summary)", file=sys.stderr)
        return 1
    return 0


def _fail(exc: Exception, code: int) -> int:
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # KeyError's str() adds quotes
    print(f"error: {message}", file=sys.stderr)
    return code
