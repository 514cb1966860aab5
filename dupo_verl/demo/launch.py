"""Run one `main_ppo` job under a hard timeout and leave no process behind.

A failure inside vLLM during weight sync makes main_ppo hang instead of exiting, and Ray starts
processes outside the job's process group. So the job runs in its own session; every process it
starts inherits a marker variable; at the end the session is killed and every process still
carrying this job's marker is terminated (a `ray stop` scoped to this job: another Ray instance on
the machine is never touched).
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

MARKER_VAR = "DUPO_DEMO_JOB"
_GRACE_S = 10.0


@dataclass
class JobResult:
    """Exit status, wall time, per-step metrics and the log of one job."""

    rc: int | None
    timed_out: bool
    wall_s: float
    log_path: Path
    steps: dict[int, dict[str, float]] = field(default_factory=dict)
    leftover_pids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def read_file_metrics(path: Path) -> dict[int, dict[str, float]]:
    """verl's file-logger lines `{"step": N, "data": {...}}` as {step: {metric: value}} (numbers only)."""
    steps: dict[int, dict[str, float]] = {}
    if not path.exists():
        return steps
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            step = int(record["step"])
            data = record["data"]
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a killed job
        metrics = steps.setdefault(step, {})
        for key, value in data.items():
            if isinstance(value, bool | int | float):
                metrics[key] = float(value)
    return steps


_CONSOLE_STEP = re.compile(r"(?:^|\s)step:(\d+) - (.*)$")


def read_console_metrics(lines: Iterable[str]) -> dict[int, dict[str, float]]:
    """verl's console-logger lines `step:N - key:value - ...` (fallback when the file logger is off)."""
    steps: dict[int, dict[str, float]] = {}
    for line in lines:
        match = _CONSOLE_STEP.search(line.rstrip("\n"))
        if not match:
            continue
        metrics = steps.setdefault(int(match.group(1)), {})
        for item in match.group(2).split(" - "):
            key, sep, value = item.rpartition(":")
            value = re.sub(r"^np\.\w+\((.*)\)$", r"\1", value.strip())
            try:
                metrics[key.strip()] = float(value)
            except ValueError:
                continue
    return steps


def run_job(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    log_path: Path,
    metrics_path: Path | None = None,
) -> JobResult:
    """Run `argv` in its own session with `env` over the current environment; kill it all after."""
    import psutil

    token = uuid.uuid4().hex
    full_env = {**os.environ, **env, MARKER_VAR: token}
    start = time.monotonic()
    timed_out = False
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            wall = time.monotonic() - start
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=_GRACE_S)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            leftover = _terminate(_marked(psutil, token))
    steps = read_console_metrics(log_path.read_text(errors="replace").splitlines())
    if metrics_path is not None:
        for step, metrics in read_file_metrics(metrics_path).items():
            steps.setdefault(step, {}).update(metrics)
    return JobResult(
        rc=None if timed_out else proc.returncode, timed_out=timed_out, wall_s=wall,
        log_path=log_path, steps=steps, leftover_pids=leftover,
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


def _marked(psutil, token: str) -> list:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(MARKER_VAR) == token:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _terminate(procs: list) -> list[int]:
    import psutil

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
    return [p.pid for p in alive]


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
