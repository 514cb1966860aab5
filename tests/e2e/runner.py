"""Run one `python -m verl.trainer.main_ppo` job under a hard timeout, leaving nothing behind.

Why: a failure inside vLLM during weight sync hangs main_ppo instead of exiting, and Ray plus vLLM
start ~25 processes, some of which leave their parent's process group. So the job runs in its own
session (setsid) with a private TMPDIR/HOME/caches inside one work folder, and every process it
starts carries a marker variable in its environment. When the job ends or times out, the whole
process group is killed and then every process still carrying the marker (Ray's GCS, raylet and
workers, vLLM engine cores) is terminated; no other Ray instance on the machine is touched, so
this is a scoped `ray stop --force`. While it runs, the summed PSS of all those processes is
sampled to report the job's peak memory. Metrics come from verl's file logger (JSON lines) and,
as a fallback, from the `step:N - key:value - ...` lines of its console logger.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MARKER_VAR = "DUPO_E2E_RUN_ID"
# AF_UNIX paths are limited to 107 bytes; Ray puts `ray/session_<date>_<pid>/sockets/<name>`
# (about 65 characters) under TMPDIR and vLLM its `<uuid>` IPC sockets.
MAX_TMPDIR_CHARS = 40
_GRACE_S = 10.0


@dataclass
class RunResult:
    """What one job did: exit status, timing, memory, parsed metrics and where its log is."""

    rc: int | None
    timed_out: bool
    wall_s: float
    peak_mem_bytes: int
    peak_processes: int
    steps: dict[int, dict[str, float]]
    log_path: Path
    leftover_pids: list[int] = field(default_factory=list)
    token: str = ""

    @property
    def peak_mem_gib(self) -> float:
        return self.peak_mem_bytes / 2**30

    def log_tail(self, chars: int = 6000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def summary(self) -> str:
        last = max(self.steps) if self.steps else None
        return (
            f"rc={self.rc} timed_out={self.timed_out} wall={self.wall_s:.1f}s "
            f"peak_mem={self.peak_mem_gib:.2f}GiB over {self.peak_processes} processes "
            f"last_step={last} leftover={self.leftover_pids}"
        )


# ---------------------------------------------------------------------------------------------
# Metric parsing
# ---------------------------------------------------------------------------------------------

_STEP_RE = re.compile(r"(?:^|\s)step:(\d+) - (.*)$")
_NUMPY_WRAP_RE = re.compile(r"^np\.\w+\((.*)\)$")


def _number(text: str) -> float | None:
    text = text.strip()
    wrapped = _NUMPY_WRAP_RE.match(text)
    if wrapped:
        text = wrapped.group(1)
    if text in ("True", "False"):
        return float(text == "True")
    try:
        return float(text)
    except ValueError:
        return None


def parse_console_metrics(lines: Iterable[str]) -> dict[int, dict[str, float]]:
    """Per-step metrics from verl console-logger lines (`step:N - key:value - ...`).

    Ray prefixes forwarded worker output (`(TaskRunner pid=1) step:1 - ...`); that prefix is
    skipped. Later lines for the same step update earlier ones (validation and training both log).
    """
    steps: dict[int, dict[str, float]] = {}
    for line in lines:
        match = _STEP_RE.search(line.rstrip("\n"))
        if not match:
            continue
        metrics = steps.setdefault(int(match.group(1)), {})
        for item in match.group(2).split(" - "):
            key, sep, value = item.rpartition(":")
            number = _number(value) if sep else None
            if key and number is not None:
                metrics[key.strip()] = number
    return steps


def parse_file_metrics(lines: Iterable[str]) -> dict[int, dict[str, float]]:
    """Per-step metrics from verl's FileLogger JSON lines (`{"step": N, "data": {...}}`)."""
    steps: dict[int, dict[str, float]] = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        record = json.loads(line)
        metrics = steps.setdefault(int(record["step"]), {})
        for key, value in record["data"].items():
            if isinstance(value, bool):
                metrics[key] = float(value)
            elif isinstance(value, int | float):
                metrics[key] = float(value)
    return steps


def merge_steps(*sources: Mapping[int, Mapping[str, float]]) -> dict[int, dict[str, float]]:
    """Union of per-step metric dicts; later sources win on equal keys."""
    merged: dict[int, dict[str, float]] = {}
    for source in sources:
        for step, metrics in source.items():
            merged.setdefault(step, {}).update(metrics)
    return merged


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


# ---------------------------------------------------------------------------------------------
# Process tracking
# ---------------------------------------------------------------------------------------------


class _ProcessTracker:
    """Finds the job's processes: descendants of the root plus anything carrying the marker."""

    def __init__(self, root_pid: int, token: str) -> None:
        self.root_pid = root_pid
        self.token = token
        self._seen: dict[tuple[int, float], bool] = {}

    def _carries_marker(self, proc: psutil.Process) -> bool:
        try:
            key = (proc.pid, proc.create_time())
        except psutil.Error:
            return False
        if key not in self._seen:
            try:
                self._seen[key] = proc.environ().get(MARKER_VAR) == self.token
            except psutil.Error:
                self._seen[key] = False
        return self._seen[key]

    def processes(self) -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        try:
            root = psutil.Process(self.root_pid)
            found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        except psutil.Error:
            pass
        me = os.getpid()
        for proc in psutil.process_iter():
            if proc.pid not in found and proc.pid != me and self._carries_marker(proc):
                found[proc.pid] = proc
        return list(found.values())


def _memory_bytes(procs: Sequence[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
            total += getattr(info, "pss", 0) or info.rss
        except psutil.Error:
            continue
    return total


def _terminate(procs: Sequence[psutil.Process]) -> list[int]:
    """SIGTERM, wait, SIGKILL; return the pids that still live."""
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=_GRACE_S)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(alive, timeout=_GRACE_S)
    return [proc.pid for proc in alive]


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


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
    sample_every_s: float = 1.0,
) -> RunResult:
    """Run `args` in its own session inside `workdir` and clean up everything it started.

    `env` is applied over the current environment (it should include `private_env(workdir)`).
    The process gets `timeout_s` seconds; then its group gets SIGTERM and, after a grace period,
    SIGKILL. Whatever the outcome, every process carrying this run's marker is terminated.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    full_env = {**os.environ, **env, MARKER_VAR: token}
    log_path = workdir / log_name
    start = time.monotonic()
    timed_out = False
    peak_mem = 0
    peak_procs = 0
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(args),
            cwd=workdir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        tracker = _ProcessTracker(proc.pid, token)
        try:
            while True:
                try:
                    proc.wait(timeout=sample_every_s)
                    break
                except subprocess.TimeoutExpired:
                    pass
                procs = tracker.processes()
                peak_mem = max(peak_mem, _memory_bytes(procs))
                peak_procs = max(peak_procs, len(procs))
                if time.monotonic() - start > timeout_s:
                    timed_out = True
                    _kill_group(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(timeout=_GRACE_S)
                    except subprocess.TimeoutExpired:
                        _kill_group(proc.pid, signal.SIGKILL)
                        proc.wait()
                    break
        finally:
            if proc.poll() is None:  # interrupted (e.g. KeyboardInterrupt in the test runner)
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            wall = time.monotonic() - start
            # Group members and escapees alike carry the marker; the group id itself is not
            # signalled once its leader is reaped (the number could be reused).
            leftover = _terminate(tracker.processes())
    rc = None if timed_out else proc.returncode
    steps = parse_console_metrics(log_path.read_text(errors="replace").splitlines())
    metrics_file = Path(env.get("VERL_FILE_LOGGER_PATH", workdir / "metrics.jsonl"))
    if metrics_file.exists():
        steps = merge_steps(steps, parse_file_metrics(metrics_file.read_text().splitlines()))
    return RunResult(
        rc=rc,
        timed_out=timed_out,
        wall_s=wall,
        peak_mem_bytes=peak_mem,
        peak_processes=peak_procs,
        steps=steps,
        log_path=log_path,
        leftover_pids=leftover,
        token=token,
    )


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
