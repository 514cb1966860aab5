"""Assertions shared by the main_ppo tests: what "it really trained" means, read from verl's logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runner import RunResult


def assert_trained(result: RunResult, steps: int = 2, max_log_ppl_diff: float = 0.05) -> dict[str, float]:
    """The job exited 0, reached `steps`, synced real weights, and left no process behind.

    Returns the metrics of the last step.
    """
    tail = result.log_tail()
    assert not result.timed_out, f"main_ppo timed out ({result.summary()})\n{tail}"
    assert result.rc == 0, f"main_ppo failed ({result.summary()})\n{tail}"
    assert not result.leftover_pids, f"processes survived cleanup: {result.leftover_pids}"
    assert steps in result.steps, f"step {steps} not logged; steps: {sorted(result.steps)}\n{tail}"
    last = result.steps[steps]
    diff = last.get("rollout_corr/log_ppl_abs_diff")
    assert diff is not None, f"rollout_corr/log_ppl_abs_diff missing at step {steps}: {sorted(last)}"
    # vLLM serving stale weights gives ~0.6 here; a real sync ~0.01.
    assert diff < max_log_ppl_diff, f"rollout/actor log-ppl gap {diff} at step {steps}: weights not synced?"
    for step in range(1, steps + 1):
        metrics = result.steps[step]
        low, high = metrics["critic/score/min"], metrics["critic/score/max"]
        assert 0.0 <= low <= high <= 1.0, f"step {step}: scores outside [0, 1]: {low}..{high}"
        assert metrics["response_length/mean"] > 0
    return last


def rollout_dump(workdir: Path, step: int) -> list[dict]:
    """Per-sample rows verl wrote to `trainer.rollout_data_dir` for `step`."""
    path = workdir / "rollouts" / f"{step}.jsonl"
    assert path.exists(), f"no rollout dump for step {step} in {path.parent}"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_dupo_step_metrics(steps: dict[int, dict[str, float]], count: int = 2) -> None:
    """The DuPO means logged at each training step (V1 `dupo_*` trainers)."""
    for step in range(1, count + 1):
        metrics = steps[step]
        assert "dupo/reward/mean" in metrics, f"step {step}: no DuPO metrics: {sorted(metrics)}"
        assert 0.0 <= metrics["dupo/reward/mean"] <= 1.0
        assert metrics["dupo/dual_errors/mean"] == 0.0
        assert metrics["response/aborted_ratio"] == 0.0
        # The reward GRPO trained on is the DuPO reward (no other scorer ran).
        assert metrics["critic/score/mean"] == pytest.approx(metrics["dupo/reward/mean"], abs=1e-4)
    assert sum(steps[s]["dupo/dual_tokens/mean"] for s in range(1, count + 1)) > 0
