"""CPU cost of the job runner itself (`dupo_verl.demo.launch.run_job`) while a job runs.

The runner watches a job shaped like `main_ppo` on CPU: a tree of `--procs` processes (default
40: 4 "workers" with 9 "engine" children each), each holding `--mb` MiB of touched memory, alive
for `--window` seconds. Two runners watch the same job shape, one after the other, in this
process, and their CPU time (`time.process_time`, this process only: the job's CPU is not in it)
is compared:
- baseline: the pre-fix sampling, every second: the whole process table (session, descent and
  every process's marker variable) and the PSS (`smaps_rollup`) of every match;
- run_job: what ships (memory of the job's own tree, gaps doubling from 1 s to 20 s).
Target: run_job costs under 2 % of one core (1.2 CPU-s per minute). Real `main_ppo` processes map
far more memory than these, so their `smaps_rollup` costs more: the baseline measured 13.7 CPU-s
per minute there; the ratio is the figure to compare.

    python benchmarks/bench_runner.py [--window 60] [--procs 40] [--mb 16]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from dupo_verl.demo import launch

TARGET_CORE_FRACTION = 0.02

_JOB = textwrap.dedent(
    """
    import subprocess, sys, time
    role, window, mb, fanout = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    ballast = bytearray(mb * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touched: resident, counted by PSS
    child_role = {"root": "worker", "worker": "leaf"}.get(role)
    count = 4 if role == "root" else fanout
    kids = [subprocess.Popen([sys.executable, sys.argv[0], child_role, *sys.argv[2:]])
            for _ in range(count if child_role else 0)]
    time.sleep(window)
    for kid in kids:
        kid.wait()
    """
)


def job_argv(script: Path, window: float, procs: int, mb: int) -> list[str]:
    """A root with 4 workers, each with `fanout` leaves: 1 + 4 + 4 * fanout processes."""
    script.write_text(_JOB)
    fanout = max(1, (procs - 5) // 4)
    return [sys.executable, str(script), "root", str(window), str(mb), str(fanout)]


def baseline_runner(argv: list[str], cwd: Path, timeout_s: float) -> tuple[float, float, int]:
    """The pre-fix loop: every second, the full process scan and the PSS of every match.
    Returns (runner CPU seconds, wall seconds, samples)."""
    token = uuid.uuid4().hex
    cpu0, start = time.process_time(), time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, launch.MARKER_VAR: token},
                            stdin=subprocess.DEVNULL, start_new_session=True)
    tracker = launch._ProcessTracker(proc.pid, token)
    samples = 0
    try:
        while time.monotonic() - start < timeout_s:
            try:
                proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                pass
            launch._memory_bytes(tracker.processes())
            samples += 1
    finally:
        cpu, wall = time.process_time() - cpu0, time.monotonic() - start
        launch._terminate(tracker.processes())
    return cpu, wall, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=60.0, help="seconds the job runs (each runner)")
    parser.add_argument("--procs", type=int, default=40, help="processes in the job's tree")
    parser.add_argument("--mb", type=int, default=16, help="MiB of touched memory per process")
    args = parser.parse_args()
    timeout = args.window + 120
    with tempfile.TemporaryDirectory(prefix="bench_runner") as tmp:
        cwd = Path(tmp)
        argv = job_argv(cwd / "job.py", args.window, args.procs, args.mb)
        base_cpu, base_wall, base_samples = baseline_runner(argv, cwd, timeout)
        job = launch.run_job(argv, cwd=cwd, env={}, timeout_s=timeout, log_path=cwd / "job.log")
    if not job.ok:
        sys.exit(f"the benchmark job failed: {job.summary()}\n{job.tail()}")
    base_rate = 60.0 * base_cpu / base_wall
    new_rate = 60.0 * job.runner_cpu_s / job.wall_s
    print(f"job: {job.peak_processes} processes, peak {job.peak_mem_gib:.2f} GiB summed PSS, {args.window:.0f} s")
    print(f"baseline (1 s, full scan): {base_rate:.3f} CPU-s/min ({base_rate / 60:.2%} of a core), {base_samples} samples")
    print(f"run_job (tree, 1..{launch.SAMPLE_EVERY_S:.0f} s): {new_rate:.3f} CPU-s/min "
          f"({new_rate / 60:.2%} of a core), {job.memory_samples} samples")
    print(f"target: < {TARGET_CORE_FRACTION:.0%} of a core: {'met' if new_rate / 60 < TARGET_CORE_FRACTION else 'MISSED'}")
    print(f"runner_cpu_ratio_baseline_over_new={base_rate / max(new_rate, 1e-9):.1f}")


if __name__ == "__main__":
    main()
