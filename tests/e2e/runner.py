"""Run one `python -m verl.trainer.main_ppo` job under a hard timeout, leaving nothing behind.

The job runner is the package's `dupo_verl.demo.launch.run_job` (own session, hard timeout, the
session and every process carrying the run's marker killed at the end, peak summed PSS, per-step
metrics from verl's file and console loggers); this module adds what the e2e tier needs on top:
a private TMPDIR/HOME/caches inside one short work folder (`private_env`) and the `workdir` /
`log_name` calling convention of the tests.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from dupo_verl.demo.launch import (  # noqa: F401  (re-exported: the tests' public API)
    MARKER_VAR,
    SAMPLE_EVERY_S,
    JobResult,
    parse_console_metrics,
    parse_file_metrics,
)
from dupo_verl.demo.launch import run_job as _launch_job

# AF_UNIX paths are limited to 107 bytes; Ray puts `ray/session_<date>_<pid>/sockets/<name>`
# (about 65 characters) under TMPDIR and vLLM its `<uuid>` IPC sockets.
MAX_TMPDIR_CHARS = 40


class RunResult(JobResult):
    """What one job did: exit status, timing, memory, parsed metrics and where its log is."""

    def log_tail(self, chars: int = 6000) -> str:
        """The first error (the cause) and the last lines (the consequence) of the job's log."""
        return self.failure_report(chars // 2)


# ---------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------


def private_env(workdir: Path, shared_cache: Path | None = None) -> dict[str, str]:
    """Environment that keeps every file the job writes inside `workdir`.

    `shared_cache` (inside the caller's own temporary folder) may hold the torch-inductor and
    Triton caches across the runs of one test session; a cold inductor cache costs ~13 s.
    """
    tmp = workdir / "t"
    if len(str(tmp)) > MAX_TMPDIR_CHARS:
        raise ValueError(f"TMPDIR {tmp} is too long for AF_UNIX socket paths: use a shorter workdir")
    cache = shared_cache or workdir / "cache"
    home = workdir / "home"
    for path in (tmp, cache, home):
        path.mkdir(parents=True, exist_ok=True)
    return {
        "TMPDIR": str(tmp),
        "RAY_TMPDIR": str(tmp),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "HF_HOME": str(home / "hf"),
        "VLLM_CACHE_ROOT": str(home / "vllm-cache"),
        "VLLM_CONFIG_ROOT": str(home / "vllm-config"),
        "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"),
        "TRITON_CACHE_DIR": str(cache / "triton"),
        "VERL_FILE_LOGGER_PATH": str(workdir / "metrics.jsonl"),
    }


def run_job(
    args: Sequence[str],
    *,
    workdir: Path,
    env: Mapping[str, str],
    timeout_s: float,
    log_name: str = "job.log",
    sample_every_s: float = SAMPLE_EVERY_S,
) -> RunResult:
    """Run `args` in its own session inside `workdir` and clean up everything it started.

    `env` is applied over the current environment (it should include `private_env(workdir)`).
    The process gets `timeout_s` seconds; then its group gets SIGTERM and, after a grace period,
    SIGKILL. Whatever the outcome, every process carrying this run's marker is terminated.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    job = _launch_job(
        args,
        cwd=workdir,
        env=env,
        timeout_s=timeout_s,
        log_path=workdir / log_name,
        metrics_path=Path(env.get("VERL_FILE_LOGGER_PATH", workdir / "metrics.jsonl")),
        sample_every_s=sample_every_s,
    )
    return RunResult(**vars(job))


def run_main_ppo(
    overrides: Sequence[str],
    *,
    workdir: Path,
    env: Mapping[str, str],
    timeout_s: float,
    python: str = sys.executable,
) -> RunResult:
    """`python -m verl.trainer.main_ppo <overrides>` through `run_job`."""
    return run_job(
        [python, "-m", "verl.trainer.main_ppo", *overrides],
        workdir=workdir,
        env=env,
        timeout_s=timeout_s,
        log_name="main_ppo.log",
    )
