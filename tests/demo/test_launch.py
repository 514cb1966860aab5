"""The job runner's own costs and manners: memory sampled rarely and over the job's tree only, and
the demo waiting only for its own runs (not for any `main_ppo` on the machine)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from dupo_verl.demo import launch
from dupo_verl.demo.launch import SampleSchedule, own_run_lock, run_job


def _start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args])


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


# ---------------------------------------------------------------------------------------------
# Waiting only for our own runs
# ---------------------------------------------------------------------------------------------


def test_a_foreign_main_ppo_does_not_block_the_demo(tmp_path: Path) -> None:
    # Another user's (or helper's) training: its command line names main_ppo, it is not ours.
    foreign = _start("import time; time.sleep(120)", "verl.trainer.main_ppo")
    try:
        time.sleep(0.3)
        assert "verl.trainer.main_ppo" in " ".join(psutil.Process(foreign.pid).cmdline())
        said: list[str] = []
        with own_run_lock(tmp_path / ".main_ppo.lock", wait_s=5, log=said.append, poll_s=0.1):
            assert (tmp_path / ".main_ppo.lock").read_text().strip() == str(os.getpid())
        assert said == []  # no "waiting": it went straight on
    finally:
        _stop(foreign)


_HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fh = open(sys.argv[1], "a+")
    fcntl.flock(fh, fcntl.LOCK_EX)
    fh.seek(0); fh.truncate(); fh.write(f"{os.getpid()}\\n"); fh.flush()
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


def _holder(lock: Path, hold_s: float) -> subprocess.Popen:
    """Another demo writing the same output: holds the lock for `hold_s` seconds."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock), str(hold_s)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_our_own_run_in_the_same_output_is_waited_for(tmp_path: Path) -> None:
    lock = tmp_path / ".main_ppo.lock"
    holder = _holder(lock, hold_s=1.5)
    try:
        said: list[str] = []
        with own_run_lock(lock, wait_s=60, log=said.append, poll_s=0.1):
            assert holder.wait(timeout=30) == 0  # it held on to the end and let go by itself
        assert len(said) == 1 and f"pid {holder.pid}" in said[0]
    finally:
        _stop(holder)


def test_a_run_that_outlasts_the_wait_is_named_not_raced(tmp_path: Path) -> None:
    lock = tmp_path / ".main_ppo.lock"
    holder = _holder(lock, hold_s=120)
    try:
        with pytest.raises(RuntimeError, match=rf"pid {holder.pid}.*another output folder"):
            with own_run_lock(lock, wait_s=0.3, log=lambda _: None, poll_s=0.1):
                pytest.fail("entered while another run held the lock")
    finally:
        _stop(holder)


# ---------------------------------------------------------------------------------------------
# Memory sampling: rare, and over the job's own process tree
# ---------------------------------------------------------------------------------------------


def test_sample_gaps_double_up_to_the_cap() -> None:
    schedule = SampleSchedule(start=100.0, first_s=1.0, every_s=20.0)
    times = []
    while len(times) < 8:
        times.append(schedule.next_at)
        schedule.advance(schedule.next_at)
    assert times == [101.0, 103.0, 107.0, 115.0, 131.0, 151.0, 171.0, 191.0]
    assert not schedule.due(210.9) and schedule.due(211.0)  # after the 8th sample at 191
    with pytest.raises(ValueError, match="every_s=0"):
        SampleSchedule(start=0.0, every_s=0)


# The job: a child in the tree, and an escapee (double fork, so init adopts it) that carries the
# job's marker; then it sleeps. The escapee is killed by the cleanup but never sampled.
_JOB = textwrap.dedent(
    """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    escapee = subprocess.Popen([sys.executable, "-c",
        "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
        " start_new_session=True); print(p.pid, flush=True)"], stdout=subprocess.PIPE, text=True)
    print("child", child.pid, "escapee", escapee.stdout.readline().strip(), flush=True)
    escapee.wait()
    time.sleep(float(sys.argv[1]))
    """
)


def test_memory_is_sampled_rarely_and_over_the_job_tree_only(tmp_path: Path, monkeypatch) -> None:
    sampled: list[tuple[float, set[int]]] = []
    real = launch._memory_bytes

    def recording(procs):
        sampled.append((time.monotonic(), {p.pid for p in procs}))
        return real(procs)

    monkeypatch.setattr(launch, "_memory_bytes", recording)
    result = run_job([sys.executable, "-c", _JOB, "4.5"], cwd=tmp_path, env={}, timeout_s=120,
                     log_path=tmp_path / "job.log", sample_every_s=2.0)
    assert result.ok, result.tail()
    words = result.tail().split()
    child, escapee = int(words[words.index("child") + 1]), int(words[words.index("escapee") + 1])

    assert result.memory_samples == len(sampled) >= 2
    assert result.peak_mem_bytes > 0 and result.peak_processes >= 2
    # the schedule's gaps (1 s, then 2 s: the cap), never closer; a 1 Hz sampler takes 4-5 here
    gaps = [b[0] - a[0] for a, b in zip(sampled, sampled[1:], strict=False)]
    assert all(gap >= expected - 0.05 for gap, expected in zip(gaps, [2.0] * len(gaps), strict=False)), gaps
    # the count follows from the gaps and the job's own length (longer under load), not from a
    # nominal duration: at most one sample at 1 s and one per 2 s after it
    assert len(sampled) <= 1 + (result.wall_s - 1.0) / 2.0 + 1e-9, (len(sampled), result.wall_s)
    # scope: the root and its descendants; the adopted escapee is not read even though it carries
    # the job's marker, and the cleanup still ends it
    for _, pids in sampled:
        assert escapee not in pids
    assert any(child in pids for _, pids in sampled)
    assert result.leftover_pids == [] and _gone(escapee) and _gone(child)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---------------------------------------------------------------------------------------------
# A failed job's message: the cause, not only the consequence
# ---------------------------------------------------------------------------------------------

_CHAINED = "".join(
    f"  File \"async_llm.py\", line {767 + i}, in generate\n    raise output\n" for i in range(200)
) + "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.\n"


def _failed_job(tmp_path: Path, text: str) -> launch.JobResult:
    log_path = tmp_path / "main_ppo.log"
    log_path.write_text(text)
    return launch.JobResult(rc=1, timed_out=False, wall_s=1.0, log_path=log_path)


@pytest.mark.parametrize("marker", [
    "(EngineCore pid=7) ERROR 11-29 [core.py:1233] EngineCore encountered a fatal error.",
    "Traceback (most recent call last):",
    "Error executing job with overrides: ['trainer.total_training_steps=2']",
])
def test_failure_report_shows_the_first_error_and_the_end(tmp_path: Path, marker: str) -> None:
    cause = "AssertionError: assert not prompt_logprobs_tensors"
    noise = "INFO starting\n" * 500
    job = _failed_job(tmp_path, f"{noise}{marker}\n  File \"scheduler.py\", line 2290\n{cause}\n{_CHAINED}")
    report = job.failure_report(1500)
    assert cause in report, report[:400]
    assert (marker in report) != marker.startswith("Error executing job"), "Hydra's override line is skipped"
    assert report.rstrip().endswith("EngineCore encountered an issue."), report[-200:]
    assert "INFO starting" not in report.split("last lines:")[0], "the report starts before the error"
    assert len(report) < 3200


def test_failure_report_is_the_tail_when_no_error_or_error_in_tail(tmp_path: Path) -> None:
    quiet = _failed_job(tmp_path, "INFO step:1\n" * 50 + "killed\n")
    assert quiet.first_error() == ""
    assert quiet.failure_report(200) == quiet.tail(200)
    short = _failed_job(tmp_path, "INFO\nTraceback (most recent call last):\nValueError: bad row 3\n")
    assert short.failure_report(2000) == short.tail(2000), "the error already in the tail is not repeated"


def test_failure_report_of_a_missing_log_is_empty(tmp_path: Path) -> None:
    job = launch.JobResult(rc=1, timed_out=False, wall_s=0.0, log_path=tmp_path / "absent.log")
    assert job.first_error() == "" and job.failure_report() == ""


def test_failure_report_skips_hydras_override_list_to_the_error_after_it(tmp_path: Path) -> None:
    """Hydra prints every override on one line before the error; that line alone filled the report."""
    overrides = "Error executing job with overrides: [" + ", ".join(f"'key{i}=value'" for i in range(400)) + "]"
    cause = "ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory."
    job = _failed_job(tmp_path, "INFO\n" * 100 + f"{overrides}\n{cause}\n" + "Top 10 memory users\n" * 300)
    first = job.first_error(500)
    assert first.startswith(cause) and "key1=value" not in first
    assert cause in job.failure_report(500)
    assert _failed_job(tmp_path, overrides).first_error() == "", "nothing after the line: no error text"
