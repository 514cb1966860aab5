"""Command-line flags shared by `dupo-verl filter` and `dupo-verl rerank`."""

from __future__ import annotations

import argparse
from pathlib import Path

from dupo_verl.generation.options import add_backend_arguments
from dupo_verl.offline.pipeline import JobOptions
from dupo_verl.offline.primal import PrimalSampling
from dupo_verl.scoring import DualOptions


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_common_arguments(parser: argparse.ArgumentParser, *, temperature: float, dual_samples: int) -> None:
    """Sampling, dual, job-control and backend flags."""
    sampling = parser.add_argument_group("candidate sampling (primal)")
    sampling.add_argument("--temperature", type=float, default=temperature, help=f"default {temperature}")
    sampling.add_argument("--top-p", type=float, default=1.0)
    sampling.add_argument(
        "--max-tokens", type=positive_int, default=4096, help="tokens per candidate solution"
    )
    dual = parser.add_argument_group("dual questions")
    dual.add_argument(
        "--dual-samples",
        type=positive_int,
        default=dual_samples,
        help=f"K: dual answers per (question, answer) pair (default {dual_samples})",
    )
    dual.add_argument("--dual-temperature", type=float, default=DualOptions.dual_temperature)
    dual.add_argument("--dual-top-p", type=float, default=DualOptions.dual_top_p)
    dual.add_argument("--dual-max-tokens", type=positive_int, default=2048, help="tokens per dual answer")
    dual.add_argument(
        "--max-answer-chars",
        type=positive_int,
        default=None,
        help="longer final answers count as no answer (default: the task's own bound)",
    )
    job = parser.add_argument_group("job control")
    job.add_argument("--seed", type=int, default=0, help="base seed; each request's seed derives from it")
    job.add_argument(
        "--max-retries",
        type=int,
        default=1,
        help="retries of a failed generation before it is recorded as failed",
    )
    job.add_argument("--concurrency", type=positive_int, default=32, help="problems in flight at once")
    job.add_argument("--limit", type=positive_int, help="only the first N input rows")
    job.add_argument("--resume", action="store_true", help="keep the rows already written and do the rest")
    job.add_argument("--overwrite", action="store_true", help="replace an existing output")
    job.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_backend_arguments(parser)


def primal_sampling(args: argparse.Namespace, n: int) -> PrimalSampling:
    return PrimalSampling(n=n, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens)


def dual_options(args: argparse.Namespace) -> DualOptions:
    options = DualOptions(
        dual_samples=args.dual_samples,
        dual_temperature=args.dual_temperature,
        dual_top_p=args.dual_top_p,
        dual_max_tokens=args.dual_max_tokens,
        max_answer_chars=args.max_answer_chars,
        max_retries=args.max_retries,
    )
    options.validate()
    return options


def job_options(args: argparse.Namespace, output: Path, description: str) -> JobOptions:
    if args.resume and args.overwrite:
        raise SystemExit("--resume and --overwrite exclude each other")
    return JobOptions(
        output=output,
        resume=args.resume,
        overwrite=args.overwrite,
        concurrency=args.concurrency,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        description=description,
    )
