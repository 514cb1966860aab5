"""The runner itself: metric parsing from real log shapes, hard timeout, and cleanup of escapees."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
from runner import MARKER_VAR, parse_console_metrics, parse_file_metrics, private_env, run_job

# Shapes seen in real main_ppo output: Ray's actor prefix with colour codes, numpy scalars' repr.
CONSOLE = [
    "\x1b[36m(TaskRunnerV1 pid=9998)\x1b[0m step:1 - global_seqlen/min:1074.0 - actor/entropy:6.90625 "
    "- rollout_corr/log_ppl_abs_diff:0.0099 - critic/score/mean:np.float64(0.25) - flag:True",
    "(TaskRunner pid=12) Training Progress:  50%|#####     | 1/2",
    "step:2 - val-core/openai/gsm8k/acc/mean@1:0.5 - timing_s/step:2.77 - actor/pg_loss:-0.0012 - x:nan",
    "step:2 - training/global_step:2",
]


def test_console_metrics_parse_ray_prefixed_lines() -> None:
    steps = parse_console_metrics(CONSOLE)
    assert sorted(steps) == [1, 2]
    assert steps[1]["rollout_corr/log_ppl_abs_diff"] == pytest.approx(0.0099)
    assert steps[1]["critic/score/mean"] == 0.25
    assert steps[1]["flag"] == 1.0
    assert steps[2]["val-core/openai/gsm8k/acc/mean@1"] == 0.5
    assert steps[2]["actor/pg_loss"] == pytest.approx(-0.0012)
    assert steps[2]["training/global_step"] == 2.0
    assert steps[2]["x"] != steps[2]["x"]  # nan survives as nan


def test_file_metrics_keep_numbers_only() -> None:
    lines = ['{"step": 1, "data": {"a": 1, "b": 0.5, "c": "text", "d": true}}', "", '{"step": 2, "data": {"a": 2}}']
    assert parse_file_metrics(lines) == {1: {"a": 1.0, "b": 0.5, "d": 1.0}, 2: {"a": 2.0}}


def test_private_env_refuses_long_tmpdir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too long"):
        private_env(tmp_path / ("x" * 60))


def test_timeout_kills_group_and_processes_that_left_it(tmp_path: Path) -> None:
    # The child starts a grandchild in a NEW session (like daemons do), then hangs.
    script = textwrap.dedent(
        """
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        print("started", flush=True)
        time.sleep(600)
        """
    )
    workdir = Path("/tmp") / f"rt{tmp_path.name[-6:]}"
    try:
        result = run_job(
            [sys.executable, "-c", script], workdir=workdir, env=private_env(workdir), timeout_s=3
        )
        assert result.timed_out and result.rc is None
        assert result.leftover_pids == []
        assert result.peak_processes >= 2 and result.peak_mem_bytes > 0
        assert "started" in result.log_tail()
        survivors = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get(MARKER_VAR) == result.token:
                    survivors.append(proc.pid)
            except psutil.Error:
                continue
        assert survivors == []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_normal_exit_reports_rc_and_metrics(tmp_path: Path) -> None:
    workdir = Path("/tmp") / f"rn{tmp_path.name[-6:]}"
    try:
        result = run_job(
            [sys.executable, "-c", "print('step:1 - a:1.5'); raise SystemExit(3)"],
            workdir=workdir,
            env=private_env(workdir),
            timeout_s=60,
        )
        assert (result.rc, result.timed_out) == (3, False)
        assert result.steps == {1: {"a": 1.5}}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
