"""Baseline: verl's own `single_turn_agent` + a plain reward function, the whole main_ppo loop on CPU.

This is the reference every DuPO run is compared with: FSDP2 actor over gloo, weight sync into
the vLLM-CPU server, agent-loop rollout, reward loop (naive manager with reward_fns.compute_score),
GRPO update. Only verl's public configuration is used.
"""

from __future__ import annotations

from pathlib import Path

from checks import assert_trained
from conftest import GSM8K
from gsm8k_data import write_gsm8k_parquet
from ppo_config import custom_reward


def test_single_turn_grpo_two_steps_sync_real_weights(run_ppo, e2e_root: Path, policy_tokenizer) -> None:
    data = write_gsm8k_parquet(GSM8K, e2e_root / "data" / "gsm8k_baseline.parquet", 16, policy_tokenizer, 240)
    result, _ = run_ppo("baseline_single_turn_v1", train_files=data, extra=custom_reward("pkg://reward_fns"))

    last = assert_trained(result, steps=2)
    # The naive reward manager scored every sample with reward_fns (gsm8k accuracy is 0 or 1).
    for step in (1, 2):
        assert result.steps[step]["critic/score/mean"] in {v / 8 for v in range(9)}
    assert last["actor/pg_loss"] == last["actor/pg_loss"]  # a number, not NaN
