"""Run one job (`main_ppo`, a vLLM command, a benchmark) under a hard timeout; leave no process behind.

A failure inside vLLM during weight sync makes main_ppo hang instead of exiting, and Ray plus vLLM
start ~25 processes, some of which leave their parent's process group. So the job runs in its own
session (setsid); every process it starts inherits a marker variable. When the job ends or times
out, the session is killed and then every process still in it, descending from it or carrying
this job's marker (Ray's GCS, raylet and workers, vLLM engine cores) is terminated: a `ray stop`
scoped to this job, another Ray instance on the machine is never touched. While it runs, the
summed PSS of those processes is sampled (the job's peak memory). Metrics come from verl's file
logger (JSON lines) and, as a fallback, from the `step:N - key:value - ...` lines of its console
logger. This is the single implementation; the e2e tier's `tests/e2e/runner.py` builds on it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER_VAR = "DUPO_DEMO_JOB"
_GRACE_S = 10.0


@dataclass
class JobResult:
    """Exit status, wall time, per-step metrics, memory and the log of one job."""

    rc: int | None
    timed_out: bool
    wall_s: float
    log_path: Path
    steps: dict[int, dict[str, float]] = field(default_factory=dict)
    leftover_pids: list[int] = field(default_factory=list)
    token: str = ""  # the value of MARKER_VAR in every process of the job
    peak_mem_bytes: int = 0  # summed PSS (RSS where PSS is unreadable) over the job's processes
    peak_processes: int = 0

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    @property
    def peak_mem_gib(self) -> float:
        return self.peak_mem_bytes / 2**30

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

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

_CONSOLE_STEP = re.compile(r"(?:^|\s)step:(\d+) - (.*)$")
_NUMPY_WRAP = re.compile(r"^np\.\w+\((.*)\)$")


def _number(text: str) -> float | None:
    """`1.5`, `nan`, `True`, `np.float64(0.25)` -> float; anything else -> None."""
    text = text.strip()
    wrapped = _NUMPY_WRAP.match(text)
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
        match = _CONSOLE_STEP.search(line.rstrip("\n"))
        if not match:
            continue
        metrics = steps.setdefault(int(match.group(1)), {})
        for item in match.group(2).split(" - "):
            key, sep, value = item.rpartition(":")
            number = _number(value) if sep else None
            if key.strip() and number is not None:
                metrics[key.strip()] = number
    return steps


def parse_file_metrics(lines: Iterable[str]) -> dict[int, dict[str, float]]:
    """Per-step metrics from verl's FileLogger JSON lines (`{"step": N, "data": {...}}`), numbers only.

    A line that is not a complete record (cut short by a killed job) is skipped.
    """
    steps: dict[int, dict[str, float]] = {}
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            step = int(record["step"])
            data = record["data"]
        except (ValueError, KeyError, TypeError):
            continue
        metrics = steps.setdefault(step, {})
        for key, value in data.items():
            if isinstance(value, bool | int | float):
                metrics[key] = float(value)
    return steps


def read_file_metrics(path: Path) -> dict[int, dict[str, float]]:
    """`parse_file_metrics` of a file; {} when it does not exist."""
    return parse_file_metrics(path.read_text().splitlines()) if path.exists() else {}


read_console_metrics = parse_console_metrics


def merge_steps(*sources: Mapping[int, Mapping[str, float]]) -> dict[int, dict[str, float]]:
    """Union of per-step metric dicts; later sources win on equal keys."""
    merged: dict[int, dict[str, float]] = {}
    for source in sources:
        for step, metrics in source.items():
            merged.setdefault(step, {}).update(metrics)
    return merged


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


class _ProcessTracker:
    """The job's processes: the root's descendants, its session, and anything carrying the marker."""

    def __init__(self, root_pid: int, token: str, marker_var: str = MARKER_VAR) -> None:
        self.root_pid = root_pid
        self.token = token
        self.marker_var = marker_var
        self._seen: dict[tuple[int, float], bool] = {}

    def _belongs(self, proc: Any) -> bool:
        import psutil

        try:
            key = (proc.pid, proc.create_time())
        except psutil.Error:
            return False
        if key not in self._seen:
            try:
                self._seen[key] = os.getsid(proc.pid) == self.root_pid
            except OSError:
                self._seen[key] = False
            if not self._seen[key]:
                try:
                    self._seen[key] = proc.environ().get(self.marker_var) == self.token
                except psutil.Error:
                    self._seen[key] = False
        return self._seen[key]

    def processes(self) -> list[Any]:
        import psutil

        found: dict[int, Any] = {}
        try:
            root = psutil.Process(self.root_pid)
            found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        except psutil.Error:
            pass
        me = os.getpid()
        for proc in psutil.process_iter():
            if proc.pid not in found and proc.pid != me and self._belongs(proc):
                found[proc.pid] = proc
        return list(found.values())


def _memory_bytes(procs: Sequence[Any]) -> int:
    import psutil

    total = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
            total += getattr(info, "pss", 0) or info.rss
        except psutil.Error:
            continue
    return total


def _terminate(procs: Sequence[Any]) -> list[int]:
    """SIGTERM, wait, SIGKILL, wait; return the pids that still live."""
    import psutil

    alive = list(procs)
    for send in ("terminate", "kill"):
        for proc in alive:
            try:
                getattr(proc, send)()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(alive, timeout=_GRACE_S)
    return [proc.pid for proc in alive]


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_job(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    log_path: Path,
    metrics_path: Path | None = None,
    sample_every_s: float = 1.0,
    marker_var: str = MARKER_VAR,
) -> JobResult:
    """Run `argv` in its own session with `env` over the current environment; kill it all after.

    stdout and stderr go to `log_path`. After `timeout_s` seconds the session gets SIGTERM and,
    after a grace period, SIGKILL. Whatever the outcome (an interrupt of the caller included),
    every process of the job still alive is terminated; `leftover_pids` lists any that survived.
    Every `sample_every_s` the job's summed memory is sampled. Steps: console metrics of the log
    merged with verl's file-logger lines at `metrics_path`.
    """
    token = uuid.uuid4().hex
    full_env = {**os.environ, **env, marker_var: token}
    start = time.monotonic()
    timed_out = False
    peak_mem = peak_procs = 0
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        tracker = _ProcessTracker(proc.pid, token, marker_var)
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
            if proc.poll() is None:  # the caller was interrupted (KeyboardInterrupt)
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            wall = time.monotonic() - start
            # The group id is not signalled once its leader is reaped (the number could be
            # reused); its members are found by session id, descent or marker instead.
            leftover = _terminate(tracker.processes())
    steps = parse_console_metrics(log_path.read_text(errors="replace").splitlines())
    if metrics_path is not None:
        steps = merge_steps(steps, read_file_metrics(metrics_path))
    return JobResult(
        rc=None if timed_out else proc.returncode,
        timed_out=timed_out,
        wall_s=wall,
        log_path=log_path,
        steps=steps,
        leftover_pids=leftover,
        token=token,
        peak_mem_bytes=peak_mem,
        peak_processes=peak_procs,
    )


def busy_jobs(pattern: str = "verl.trainer.main_ppo") -> list[int]:
    """Pids of other processes running `pattern` (the machine's cores are shared)."""
    import psutil

    me = os.getpid()
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if pattern in cmd and proc.info["pid"] != me:
            pids.append(proc.info["pid"])
    return pids
