"""Command-line flags shared by `dupo-verl filter` and `dupo-verl rerank`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from dupo_verl.cli._types import MAX_COUNT, float_in, int_in
from dupo_verl.generation.options import add_backend_arguments
from dupo_verl.offline.pipeline import JobOptions
from dupo_verl.offline.primal import PrimalSampling
from dupo_verl.scoring import DUAL_MODES, MAX_DUAL_TIMEOUT_S, DualOptions

positive_int = int_in(1, MAX_COUNT)
MAX_TEMPERATURE = 100.0


def add_common_arguments(parser: argparse.ArgumentParser, *, temperature: float, dual_samples: int) -> None:
    """Sampling, dual, job-control and backend flags."""
    sampling = parser.add_argument_group("candidate sampling (primal)")
    sampling.add_argument(
        "--temperature",
        type=float_in(0, MAX_TEMPERATURE),
        default=temperature,
        help=f"in [0, {MAX_TEMPERATURE:g}] (default {temperature})",
    )
    sampling.add_argument("--top-p", type=float_in(0, 1, low_open=True), default=1.0, help="in (0, 1]")
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
    dual.add_argument(
        "--dual-temperature", type=float_in(0, MAX_TEMPERATURE), default=DualOptions.dual_temperature
    )
    dual.add_argument(
        "--dual-top-p", type=float_in(0, 1, low_open=True), default=DualOptions.dual_top_p, help="in (0, 1]"
    )
    dual.add_argument("--dual-max-tokens", type=positive_int, default=2048, help="tokens per dual answer")
    dual.add_argument(
        "--dual-mode",
        choices=DUAL_MODES,
        default=DualOptions.dual_mode,
        help="sample: K dual answers, checked; likelihood: exp(mean log-prob) of the true hidden value, one prefill",
    )
    dual.add_argument(
        "--max-answer-chars",
        type=positive_int,
        default=None,
        help="longer final answers count as no answer (default: the task's own bound)",
    )
    job = parser.add_argument_group("job control")
    job.add_argument(
        "--seed", type=int_in(0, 2**63 - 1), default=0, help="base seed; each request's seed derives from it"
    )
    job.add_argument(
        "--max-retries",
        type=int_in(0, 100),
        default=1,
        help="retries of a failed generation before it is recorded as failed",
    )
    job.add_argument(
        "--dual-timeout-s",
        type=float_in(0, MAX_DUAL_TIMEOUT_S, low_open=True),
        default=DualOptions.dual_timeout_s,
        help="seconds one dual generation may take before it counts as a failed attempt "
        f"(0, {MAX_DUAL_TIMEOUT_S:g}]",
    )
    job.add_argument("--concurrency", type=positive_int, default=32, help="problems in flight at once")
    job.add_argument("--limit", type=positive_int, help="only the first N input rows")
    job.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run with the same settings (checked against OUTPUT.settings.json): "
        "keep the rows written, redo rows recorded as failed or invalid, and do the rest",
    )
    job.add_argument("--overwrite", action="store_true", help="replace an existing output")
    job.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_backend_arguments(parser)


def add_task_module_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task-module",
        dest="task_modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (registering its tasks) and allow task names MODULE:Class, in --task or in "
        "the rows; without it a `module:Class` name in the data is refused, never imported (repeatable)",
    )


def primal_sampling(args: argparse.Namespace, n: int) -> PrimalSampling:
    return PrimalSampling(n=n, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens)


def dual_options(args: argparse.Namespace) -> DualOptions:
    """The dual flags as `DualOptions` (validated on construction); a bad value is a ValueError, which the
    command prints as one `error:` line with exit status 2 like every other option error."""
    try:
        return DualOptions(
            dual_samples=args.dual_samples,
            dual_temperature=args.dual_temperature,
            dual_top_p=args.dual_top_p,
            dual_max_tokens=args.dual_max_tokens,
            max_answer_chars=args.max_answer_chars,
            max_retries=args.max_retries,
            dual_timeout_s=args.dual_timeout_s,
            dual_mode=args.dual_mode,
        )
    except ValueError as exc:
        raise ValueError(f"dual options: {exc}") from None


# Flags that decide the rows: recorded beside the output; `--resume` refuses a run that differs.
# Not here: paths, secrets and flags that change only speed (concurrency, batch size, timeouts).
ROW_DECIDING_FLAGS = (
    "temperature",
    "top_p",
    "max_tokens",
    "dual_samples",
    "dual_temperature",
    "dual_top_p",
    "dual_max_tokens",
    "dual_mode",
    "max_answer_chars",
    "max_retries",
    "seed",
    "backend",
    "model",
    "dtype",
    "max_model_len",
    "chat_template_kwargs",
)


def job_settings(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The settings that decide a job's rows: the shared flags plus the command's own (`extra`)."""
    settings = {name: getattr(args, name, None) for name in ROW_DECIDING_FLAGS}
    settings.update(extra)
    return settings


def check_backend_args(args: argparse.Namespace) -> None:
    """Range checks of the backend flags (ValueError naming the flag), before any model is loaded or
    any output opened (so a missing flag never costs an existing output)."""
    backend = getattr(args, "backend", None)
    if backend == "openai" and not getattr(args, "base_url", None):
        raise ValueError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
    if backend in ("vllm", "hf") and not getattr(args, "model", None):
        raise ValueError(f"--backend {backend} needs --model (a local path or hub name)")
    checks = {
        "--max-concurrency": (getattr(args, "max_concurrency", 1), 1, MAX_COUNT),
        "--request-timeout": (getattr(args, "request_timeout", 1.0), 1e-3, 86400.0),
        "--http-retries": (getattr(args, "http_retries", 0), 0, 100),
        "--tensor-parallel-size": (getattr(args, "tensor_parallel_size", 1), 1, 1024),
        "--gpu-memory-utilization": (getattr(args, "gpu_memory_utilization", 0.5), 1e-3, 1.0),
        "--max-model-len": (getattr(args, "max_model_len", None), 1, MAX_COUNT),
        "--batch-size": (getattr(args, "batch_size", None), 1, MAX_COUNT),
    }
    for flag, (value, low, high) in checks.items():
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{flag} must be in [{low:g}, {high:g}], got {value!r}")
    if backend in ("vllm", "hf"):
        _check_dtype(getattr(args, "dtype", "auto"))
        _check_local_model(args.model)
    if backend == "hf":
        _check_device(getattr(args, "device", "cpu"))


# Weight dtypes both local backends take by name (transformers' `dtype=`, vLLM's `--dtype`).
DTYPES = ("auto", "float32", "float16", "bfloat16", "half", "float")


def _check_local_model(model: str) -> None:
    """A `--model` spelt as a local path (absolute, ./, ../, ~, or deeper than a hub's org/name) must
    exist: the hub client would report it as a malformed repo id."""
    looks_local = model.startswith(("/", "./", "../", "~", ".\\")) or model.count("/") > 1
    if looks_local and not Path(model).expanduser().exists():
        raise ValueError(f"--model {model}: no such local folder (a hub model is named org/name)")


def _check_dtype(dtype: Any) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")


def _check_device(device: Any) -> None:
    """A torch device this machine has: `cuda` on a CPU-only torch would fail after the model loaded."""
    import torch

    try:
        parsed = torch.device(str(device))
    except (RuntimeError, ValueError):
        raise ValueError(f"--device must be a torch device such as cpu, cuda or cuda:1, got {device!r}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: this torch has no CUDA device (use --device cpu)")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")


def job_options(
    args: argparse.Namespace, output: Path, description: str, settings: dict[str, Any] | None = None
) -> JobOptions:
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    check_backend_args(args)
    return JobOptions(
        output=output,
        resume=args.resume,
        overwrite=args.overwrite,
        concurrency=args.concurrency,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        description=description,
        settings=settings,
    )
