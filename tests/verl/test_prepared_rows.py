"""`dupo-verl prepare` output -> verl's RLHFDataset -> `dupo_agent`: the real data contract end to end."""

from __future__ import annotations

import re

from verl import DataProto
from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn
from verl_helpers import make_server, make_worker, verl_config

from dupo_verl.cli import main as dupo_verl_cli

PRIMAL = re.compile(r"(\d+)\+(\d+)=")
DUAL = re.compile(r"(\d+)\+V=(-?\d+) V=")


async def test_two_sum_parquet_through_rlhf_dataset_and_worker(
    tiny_lm, tiny_model_path, agent_loop_yaml, tmp_path
):
    parquet = tmp_path / "two_sum.parquet"
    assert (
        dupo_verl_cli(
            ["prepare", "two-sum", "--output", str(parquet), "--num-problems", "4", "--no-progress"]
        )
        == 0
    )
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        f"data.train_files={parquet}",
        "+dupo.dual_samples=2",
    )
    dataset = RLHFDataset([str(parquet)], tiny_lm.tokenizer, config.data)
    batch = DataProto.from_single_dict(collate_fn([dataset[i] for i in range(len(dataset))]))
    assert set(batch.non_tensor_batch["agent_name"]) == {"dupo_agent"}  # written by prepare

    wrong = {}  # the first problem gets a wrong primal answer (off by one)

    def reply(call):
        if DUAL.search(call.prompt_text):
            a, total = DUAL.search(call.prompt_text).groups()
            return str(int(total) - int(a))  # an arithmetic-perfect dual
        a, b = PRIMAL.search(call.prompt_text).groups()
        wrong.setdefault("problem", (a, b))
        return str(int(a) + int(b) + (1 if wrong["problem"] == (a, b) else 0))

    server = make_server(tiny_lm, config, reply_fn=reply)
    out = await make_worker(config, server).generate_sequences(batch)

    rewards = out.non_tensor_batch["dupo_reward"].tolist()
    gold = out.non_tensor_batch["dupo_gold_acc"].tolist()
    assert sorted(rewards) == [0.0, 1.0, 1.0, 1.0] and rewards == gold
    assert out.non_tensor_batch["dupo_agrees_with_gold"].tolist() == [1.0] * 4
    assert out.non_tensor_batch["dupo_dual_samples"].tolist() == [2.0] * 4
