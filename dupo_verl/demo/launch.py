"""Run one job (`main_ppo`, a vLLM command, a benchmark) under a hard timeout; leave no process behind.

A failure inside vLLM during weight sync makes main_ppo hang instead of exiting, and Ray plus vLLM
start ~25 processes, some of which leave their parent's process group. So the job runs in its own
session (setsid); every process it starts inherits a marker variable. When the job ends or times
out, the session is killed and then every process still in it, descending from it or carrying
this job's marker (Ray's GCS, raylet and workers, vLLM engine cores) is terminated: a `ray stop`
scoped to this job, another Ray instance on the machine is never touched. While it runs, the
summed PSS of the job's process tree is sampled (its peak memory), rarely: reading `smaps_rollup`
of ~40 processes every second cost the runner ~14 CPU-s a minute, a quarter of a core taken from
the job it watches (benchmarks/bench_runner.py measures it). Metrics come from verl's file
logger (JSON lines) and, as a fallback, from the `step:N - key:value - ...` lines of its console
logger. This is the single implementation; the e2e tier's `tests/e2e/runner.py` builds on it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER_VAR = "DUPO_DEMO_JOB"
_GRACE_S = 10.0
# Memory samples: the first after SAMPLE_FIRST_S, then the gap doubles up to SAMPLE_EVERY_S, so a
# short job is still measured and a long one costs one walk of its process tree per SAMPLE_EVERY_S.
SAMPLE_FIRST_S = 1.0
SAMPLE_EVERY_S = 20.0
# Where a crash starts: a job's last lines show only the consequence (a vLLM EngineDeadError repeated
# through Ray's chained tracebacks), the first fatal line names the cause.
_FIRST_ERROR = re.compile(r"Traceback \(most recent call last\)|encountered a fatal error|Error executing job")


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
    peak_mem_bytes: int = 0  # summed PSS (RSS where PSS is unreadable) over the job's process tree
    peak_processes: int = 0
    memory_samples: int = 0  # how often the tree's memory was read
    runner_cpu_s: float = 0.0  # CPU time of the runner itself (this process) while the job ran

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    @property
    def peak_mem_gib(self) -> float:
        return self.peak_mem_bytes / 2**30

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def first_error(self, chars: int = 3000) -> str:
        """The log from the line of its first traceback or fatal error on ("" when there is none)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        found = _FIRST_ERROR.search(text)
        if found is None:
            return ""
        start = text.rfind("\n", 0, found.start()) + 1
        if found.group(0) == "Error executing job":  # Hydra's line repeats every override: the error follows it
            start = text.find("\n", found.end()) + 1 or len(text)
        return text[start:start + chars]

    def failure_report(self, chars: int = 3000) -> str:
        """Where the log first went wrong and how it ended, for a failed job's message."""
        first, tail = self.first_error(chars), self.tail(chars)
        if not first or first in tail:
            return tail
        return f"first error:\n{first}\n...\nlast lines:\n{tail}"

    def summary(self) -> str:
        last = max(self.steps) if self.steps else None
        return (
            f"rc={self.rc} timed_out={self.timed_out} wall={self.wall_s:.1f}s "
            f"peak_mem={self.peak_mem_gib:.2f}GiB over {self.peak_processes} processes "
            f"runner_cpu={self.runner_cpu_s:.2f}s ({self.memory_samples} samples) "
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


def logged_steps(log_path: Path, metrics_path: Path | None = None) -> dict[int, dict[str, float]]:
    """A finished job's per-step metrics: its console log, then verl's file logger (which wins)."""
    try:
        steps = parse_console_metrics(log_path.read_text(errors="replace").splitlines())
    except OSError:
        steps = {}
    if metrics_path is not None:
        steps = merge_steps(steps, read_file_metrics(metrics_path))
    return steps


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

    def tree(self) -> list[Any]:
        """The root and its descendants (Ray's GCS, raylet and workers, vLLM engine cores): one pass
        over the process table's parent ids, no per-process environment read."""
        import psutil

        try:
            root = psutil.Process(self.root_pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def processes(self) -> list[Any]:
        """`tree()` plus the session and every marker carrier: the full scan, for the cleanup."""
        import psutil

        found = {proc.pid: proc for proc in self.tree()}
        me = os.getpid()
        for proc in psutil.process_iter():
            if proc.pid not in found and proc.pid != me and self._belongs(proc):
                found[proc.pid] = proc
        return list(found.values())


class SampleSchedule:
    """When to sample next: `first_s` after the start, then gaps doubling up to `every_s`."""

    def __init__(self, start: float, first_s: float = SAMPLE_FIRST_S, every_s: float = SAMPLE_EVERY_S) -> None:
        if first_s <= 0 or every_s <= 0:
            raise ValueError(f"sampling gaps must be > 0, got first_s={first_s} every_s={every_s}")
        self._gap = min(first_s, every_s)
        self.every_s = every_s
        self.next_at = start + self._gap

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def advance(self, now: float) -> None:
        """A sample was taken at `now`: the next one is one (doubled, capped) gap later."""
        self._gap = min(2 * self._gap, self.every_s)
        self.next_at = now + self._gap


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
    sample_every_s: float = SAMPLE_EVERY_S,
    marker_var: str = MARKER_VAR,
) -> JobResult:
    """Run `argv` in its own session with `env` over the current environment; kill it all after.

    stdout and stderr go to `log_path`. After `timeout_s` seconds the session gets SIGTERM and,
    after a grace period, SIGKILL. Whatever the outcome (an interrupt of the caller included),
    every process of the job still alive is terminated; `leftover_pids` lists any that survived.
    The summed memory of the job's process tree is sampled on a `SampleSchedule` (gaps growing to
    `sample_every_s`). Steps: console metrics of the log merged with verl's file-logger lines at
    `metrics_path`.
    """
    token = uuid.uuid4().hex
    full_env = {**os.environ, **env, marker_var: token}
    cpu_start = time.process_time()
    start = time.monotonic()
    deadline = start + timeout_s
    schedule = SampleSchedule(start, every_s=sample_every_s)
    timed_out = False
    peak_mem = peak_procs = samples = 0
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
                    proc.wait(timeout=max(0.0, min(schedule.next_at, deadline) - time.monotonic()))
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if schedule.due(now):
                    procs = tracker.tree()
                    peak_mem = max(peak_mem, _memory_bytes(procs))
                    peak_procs = max(peak_procs, len(procs))
                    samples += 1
                    schedule.advance(time.monotonic())
                if now >= deadline:
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
            runner_cpu = time.process_time() - cpu_start
            # The group id is not signalled once its leader is reaped (the number could be
            # reused); its members are found by session id, descent or marker instead.
            leftover = _terminate(tracker.processes())
    steps = logged_steps(log_path, metrics_path)
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
        memory_samples=samples,
        runner_cpu_s=runner_cpu,
    )


# ---------------------------------------------------------------------------------------------
# One run at a time per output folder
# ---------------------------------------------------------------------------------------------


@contextmanager
def own_run_lock(path: Path, wait_s: float, log: Callable[[str], None] = print, poll_s: float = 2.0) -> Iterator[None]:
    """Hold an exclusive lock on `path` (e.g. `<output>/.main_ppo.lock`) while one of our runs goes.

    Another run holding it (another demo writing the same output) is waited for up to `wait_s`,
    then a RuntimeError names it; any other process on the machine, whatever its command line, is
    not our business. The lock is an flock, so a killed holder releases it; the file keeps the
    holder's pid for the message.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    with open(path, "a+") as fh:
        announced = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "?"
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"{path}: another run in this output folder (pid {holder}) has held it for over "
                        f"{wait_s:.0f}s; wait for it to finish or use another output folder"
                    ) from None
                if not announced:
                    log(f"another run in this output folder is going (pid {holder}, lock {path}); waiting for it")
                    announced = True
                time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
