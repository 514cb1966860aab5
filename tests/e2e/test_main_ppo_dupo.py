"""DuPO under verl's V0 trainer (`trainer.use_v1=false`) through the real `main_ppo` on CPU.

The V1 paths (math and translation self-dual, the frozen dual via verl's reward-model servers) run
as users run them, through the example scripts themselves (test_examples_e2e.py). No script uses
V0, so this run composes its overrides here: data from `dupo-verl prepare`, the agent loop from the
YAML `dupo-verl agent-loop-config` prints. V0 dumps every `reward_extra_info` key per sample to
`trainer.rollout_data_dir` (V1's dump carries only uids and scores), which the test reads.

The run uses likelihood duals (`+dupo.dual_mode=likelihood`): the example scripts' V1 runs sample
their duals, so both dual modes go through the real `main_ppo` without a run of their own. Here the
dual reads the hidden value's prompt log-probs from verl's vLLM server in one prefill and generates
no token.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from checks import assert_trained, rollout_dump
from ppo_config import custom_reward
from prepared_data import dupo_cli, short_gsm8k_subset

# Likelihood duals: one prefill per dual question, no dual decoding.
DUAL_OPTIONS = ["+dupo.dual_mode=likelihood"]


def self_dual_overrides() -> list[str]:
    cfg = dupo_cli("agent-loop-config").strip()
    assert Path(cfg).is_file(), cfg
    return [
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={cfg}",
        "actor_rollout_ref.rollout.agent.default_agent_loop=dupo_agent",
        *DUAL_OPTIONS,
        *custom_reward("pkg://reward_fns"),
    ]


def assert_dupo_rollouts(workdir: Path, steps: int = 2) -> list[dict]:
    """V0 dump: every sample carries DuPO metrics, its reward is the DuPO reward, and the likelihood
    duals really read log-probs at every step without generating a dual token."""
    all_rows = []
    for step in range(1, steps + 1):
        rows = rollout_dump(workdir, step)
        assert rows, f"step {step}: empty rollout dump"
        for row in rows:
            assert "dupo_reward" in row, f"no DuPO metrics in the rollout dump: {sorted(row)}"
            assert 0.0 <= row["dupo_reward"] <= 1.0
            assert row["score"] == pytest.approx(row["dupo_reward"], abs=1e-6), "trained reward is not the DuPO reward"
            assert row["dupo_dual_errors"] == 0, f"dual calls failed: {row}"
            assert row["dupo_dual_tokens"] == 0, f"likelihood mode generated dual tokens: {row}"
        asked = [row for row in rows if row["dupo_dual_questions"] > 0]
        assert asked, f"step {step}: no dual question was asked"
        logprobs = [row["dupo_dual_logprob"] for row in asked]
        # a real prefill of a random tiny model: every value token costs some nats, never none
        assert all(math.isfinite(v) and v < 0 for v in logprobs), f"step {step}: dual log-probs {logprobs}"
        mean = sum(row["dupo_dual_logprob"] for row in rows) / len(rows)
        print(f"step {step}: dupo_dual_logprob mean {mean:.3f} over {len(rows)} samples ({len(asked)} asked)")
        assert mean < 0
        all_rows += rows
    return all_rows


def test_math_self_dual_v0_likelihood(run_ppo, e2e_root: Path) -> None:
    src = short_gsm8k_subset(e2e_root / "data" / "gsm8k_short.jsonl")
    data = e2e_root / "data" / "dupo_math.parquet"
    dupo_cli("prepare", "math", "--input", str(src), "--output", str(data), "--answer-key", "answer", "--no-progress")
    result, workdir = run_ppo("dupo_math_self_dual_v0_likelihood", train_files=data, extra=self_dual_overrides(), use_v1=False)
    assert_trained(result, steps=2)
    assert_dupo_rollouts(workdir)
