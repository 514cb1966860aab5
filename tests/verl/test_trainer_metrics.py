"""Training-step DuPO metrics under verl V1: the `dupo_*` trainers and the TransferQueue read-back."""

from __future__ import annotations

import pytest
from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl_helpers import is_dual, make_server, plus_row, run_dupo_loop, verl_config

from dupo_verl.verl.trainer import DuPOTrainerSync, reward_extra_infos, summarize_reward_extra_info


def test_summary_means_and_gold_only_rates():
    infos = [
        {
            "dupo_reward": 1.0,
            "dupo_dual_acc": 1.0,
            "dupo_has_gold": 1.0,
            "dupo_gold_acc": 1.0,
            "dupo_agrees_with_gold": 1.0,
        },
        {
            "dupo_reward": 0.5,
            "dupo_dual_acc": 0.5,
            "dupo_has_gold": 1.0,
            "dupo_gold_acc": 0.0,
            "dupo_agrees_with_gold": 0.0,
        },
        {
            "dupo_reward": 0.0,
            "dupo_dual_acc": 0.0,
            "dupo_has_gold": 0.0,
            "dupo_gold_acc": 0.0,
            "dupo_agrees_with_gold": 0.0,
        },
    ]
    out = summarize_reward_extra_info(infos)
    assert out["dupo/reward/mean"] == pytest.approx(0.5)
    assert out["dupo/has_gold/mean"] == pytest.approx(2 / 3)
    assert (
        out["dupo/gold_acc/mean"] == 0.5 and out["dupo/agrees_with_gold/mean"] == 0.5
    )  # over gold rows only
    assert summarize_reward_extra_info([{"acc": 1.0}]) == {}


def test_dupo_sync_is_verls_sync_trainer(tiny_model_path):
    config = verl_config(tiny_model_path, "trainer.v1.trainer_mode=dupo_sync")
    trainer = get_trainer_cls(config.trainer.v1.trainer_mode)(config)
    assert isinstance(trainer, DuPOTrainerSync) and isinstance(trainer, PPOTrainerSync)
    assert trainer.trainer_mode == "sync" and type(trainer.replay_buffer) is ReplayBuffer


@pytest.mark.slow
async def test_step_metrics_read_back_from_a_real_transfer_queue(tiny_lm, tiny_model_path, agent_loop_yaml):
    """The loop's outputs go into TransferQueue as AgentLoopWorkerTQ puts them; the trainer reads them back."""
    import ray
    import transfer_queue as tq
    from omegaconf import OmegaConf
    from transfer_queue import KVBatchMeta
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    config = verl_config(
        tiny_model_path, f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}"
    )
    answers = {"What is 3 + 4": "\\boxed{7}", "What is 1 + 1": "\\boxed{2}"}
    server = make_server(
        tiny_lm,
        config,
        reply_fn=lambda c: "4" if is_dual(c) else next(v for k, v in answers.items() if k in c.prompt_text),
    )
    fields = []
    for row in (plus_row(0, 3, 4), plus_row(1, 1, 1, hidden=[("1 + Vb", "1")])):
        _, output = await run_dupo_loop(config, server, row)
        fields.append(output.as_dict())
    fields.append(fields[0])  # a padding row verl adds to balance the batch: must not count

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
        tags = [{"status": "success"}, {"status": "success"}, {"status": "success", "is_padding": True}]
        keys = ["u0_0_0", "u1_0_0", "pad_0_0"]
        tq.kv_batch_put(keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(fields), tags=tags)
        metrics = DuPOTrainerSync._dupo_step_metrics(KVBatchMeta(keys=keys, tags=tags, partition_id="train"))
    finally:
        tq.close()
        if started_ray:
            ray.shutdown()

    assert metrics["dupo/reward/mean"] == 0.5  # row 0: dual says 4 (right); row 1: dual says 4, hidden 1
    assert metrics["dupo/dual_acc/mean"] == 0.5
    assert metrics["dupo/gold_acc/mean"] == 1.0
    assert reward_extra_infos([{"reward_extra_info": {"x": 1}}, {"turn_scores": []}]) == [{"x": 1}, {}]
