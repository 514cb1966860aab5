"""DuPO rewards from `dupo_agent` feed verl's GRPO advantage, which must rank rollouts as the rewards do."""

from __future__ import annotations

import re

import numpy as np
from verl.trainer.ppo.core_algos import get_adv_estimator_fn
from verl_helpers import is_dual, make_server, make_worker, plus_row, rows_to_batch, verl_config

PRIMAL = ["\\boxed{7}", "\\boxed{6}", "\\boxed{8}", "no idea"]  # four rollouts of 3 + 4
DUAL = {"7": ["4", "4"], "6": ["4", "2"], "8": ["5", "5"]}  # the dual's two answers per primal answer


async def test_grpo_advantage_ranks_rollouts_like_dupo_rewards(tiny_lm, tiny_model_path, agent_loop_yaml):
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        "+dupo.dual_samples=2",
        "algorithm.adv_estimator=grpo",
    )
    primal = list(PRIMAL)
    dual = {k: list(v) for k, v in DUAL.items()}

    def reply(call):
        if not is_dual(call):
            return primal.pop(0)
        return dual[re.search(r"= (\d+)\.", call.prompt_text).group(1)].pop(0)

    server = make_server(tiny_lm, config, reply_fn=reply)
    out = await make_worker(config, server).generate_sequences(rows_to_batch([plus_row(0, 3, 4)] * 4))

    rewards = out.batch["rm_scores"].sum(-1)
    assert sorted(rewards.tolist()) == [0.0, 0.0, 0.5, 1.0]
    grpo = get_adv_estimator_fn(config.algorithm.adv_estimator)
    advantages, _ = grpo(
        token_level_rewards=out.batch["rm_scores"],
        response_mask=out.batch["response_mask"],
        index=np.array(["uid-0"] * 4, dtype=object),
        config=config.algorithm,
    )
    per_rollout = advantages[:, 0]
    assert np.array_equal(
        np.argsort(per_rollout.numpy(), kind="stable"), np.argsort(rewards.numpy(), kind="stable")
    )
    assert (
        per_rollout[rewards == 1.0].item()
        > per_rollout[rewards == 0.5].item()
        > 0
        > per_rollout[rewards == 0.0][0]
    )
    assert per_rollout[rewards == 0.0][0] == per_rollout[rewards == 0.0][1]  # equal rewards, equal advantage
