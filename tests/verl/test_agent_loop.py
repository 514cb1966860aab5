"""`dupo_agent` driven through verl's own `AgentLoopWorker`, served by a real tiny model."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import pytest
import torch
from hydra.errors import InstantiationException
from tiny_server import TinyLMServer
from verl.utils.tensordict_utils import list_of_dict_to_tensordict
from verl_helpers import (
    is_dual,
    make_server,
    make_worker,
    plus_row,
    primal_reply,
    rows_to_batch,
    run_dupo_loop,
    verl_config,
)

from dupo_verl.scoring import METRIC_KEYS, DualOptions


def _dual_calls(server):
    return [c for c in server.calls if is_dual(c)]


def _primal_calls(server):
    return [c for c in server.calls if not is_dual(c)]


async def test_reward_on_last_token_and_only_primal_tokens(tiny_lm, tiny_model_path, agent_loop_yaml):
    config = verl_config(
        tiny_model_path, f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}"
    )
    replies = {"What is 3 + 4": "The sum is \\boxed{7}", "What is 10 + 5": "so \\boxed{15}"}

    def reply(call):
        if is_dual(call):
            return "Vb = 4" if "3 + Vb" in call.prompt_text else "Vb = 6"  # right for row 0, wrong for row 1
        return next(text for key, text in replies.items() if key in call.prompt_text)

    server = make_server(tiny_lm, config, reply_fn=reply)
    out = await make_worker(config, server).generate_sequences(
        rows_to_batch([plus_row(0, 3, 4), plus_row(1, 10, 5)])
    )

    rm = out.batch["rm_scores"]
    prompt_len = out.batch["prompts"].shape[1]
    valid = out.batch["attention_mask"][:, prompt_len:].sum(-1)
    assert rm[0, valid[0] - 1].item() == 1.0 and rm[1, valid[1] - 1].item() == 0.0
    assert torch.count_nonzero(rm[0]).item() == 1 and torch.count_nonzero(rm[1]).item() == 0

    # responses hold exactly the primal generation: no dual token, no dual prompt
    primal_outputs = {tuple(c.prompt_ids): c.output_ids for c in _primal_calls(server)}
    assert len(primal_outputs) == 2 and len(_dual_calls(server)) == 2
    for i in range(2):
        prompt_ids = out.batch["prompts"][i][out.batch["attention_mask"][i, :prompt_len].bool()].tolist()
        response = out.batch["responses"][i, : valid[i]].tolist()
        assert response == primal_outputs[tuple(prompt_ids)]
        assert out.batch["response_mask"][i].sum().item() == len(response)
        assert torch.allclose(
            out.batch["rollout_log_probs"][i, : valid[i]],
            torch.tensor(tiny_lm.score(prompt_ids, response)),
            atol=1e-5,
        )
    assert out.non_tensor_batch["dupo_dual_acc"].tolist() == [1.0, 0.0]


async def test_dual_calls_carry_sampling_params_and_sticky_ids(
    tiny_lm, tiny_model_path, agent_loop_yaml, tmp_path
):
    # YAML sets two options, +dupo overrides one of them: +dupo > YAML > defaults
    yaml_path = tmp_path / "loops.yaml"
    yaml_path.write_text(
        "- name: dupo_agent\n"
        "  _target_: dupo_verl.verl.agent_loop.DuPOAgentLoop\n"
        "  dupo:\n"
        "    dual_samples: 2\n"
        "    dual_top_p: 0.9\n"
    )
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={yaml_path}",
        "actor_rollout_ref.rollout.temperature=0.8",
        "+dupo.dual_samples=3",
        "+dupo.dual_temperature=0.3",
        "+dupo.dual_max_tokens=7",
        "+dupo.dual_questions_per_rollout=2",
        dual_max_tokens=None,
    )
    server = make_server(tiny_lm, config, reply_fn=primal_reply("\\boxed{9}"))
    hidden = [("2 + Vb", "7"), ("Vb + 7", "2"), ("1 + 1 + Vb", "7")]  # three duals, two used
    rows = [plus_row(0, 2, 7, hidden=hidden), plus_row(0, 2, 7, hidden=hidden)]  # two rollouts of one prompt
    out = await make_worker(config, server).generate_sequences(rows_to_batch(rows))

    for call in _primal_calls(server):
        assert call.sampling_params["temperature"] == 0.8 and call.sampling_params["logprobs"] is True
        assert "max_tokens" not in call.sampling_params  # the primal keeps verl's own budget
    duals = _dual_calls(server)
    assert len(duals) == 2 * 2 * 3
    for call in duals:
        assert call.sampling_params == {"temperature": 0.3, "top_p": 0.9, "max_tokens": 7}
        assert len(call.output_ids) <= 7
    by_id = defaultdict(set)
    for call in duals:
        by_id[call.request_id].add(call.prompt_text)
    # one sticky id per dual question: 2 rollouts x 2 questions, each id used K=3 times for one prompt
    assert Counter(c.request_id for c in duals) == dict.fromkeys(by_id, 3)
    assert len(by_id) == 4 and all(len(prompts) == 1 for prompts in by_id.values())
    assert out.non_tensor_batch["dupo_dual_questions"].tolist() == [2.0, 2.0]
    assert out.non_tensor_batch["dupo_dual_samples"].tolist() == [6.0, 6.0]
    generated = sum(len(c.output_ids) for c in duals)
    assert out.non_tensor_batch["dupo_dual_tokens"].sum() == generated


async def test_metric_keys_identical_and_v0_postprocess_accepts(tiny_lm, tiny_model_path, agent_loop_yaml):
    config = verl_config(
        tiny_model_path, f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}"
    )

    def reply(call):
        if is_dual(call):
            return "4"
        if "What is 3 + 4" in call.prompt_text:
            return "\\boxed{7}"
        if "What is 1 + 4" in call.prompt_text:
            return "\\boxed{5 with Vb = 4}"  # gives the hidden value away
        return None  # the random tiny model: no boxed answer

    server = make_server(tiny_lm, config, reply_fn=reply)
    rows = [plus_row(0, 3, 4), plus_row(1, 1, 4), plus_row(2, 20, 22, gold=False)]
    out = await make_worker(config, server).generate_sequences(rows_to_batch(rows))

    assert out.meta_info["reward_extra_keys"] == list(METRIC_KEYS)
    for key in METRIC_KEYS:
        assert out.non_tensor_batch[key].shape == (3,)
    info = {k: out.non_tensor_batch[k].tolist() for k in METRIC_KEYS}
    assert info["dupo_reward"] == [1.0, 0.0, 0.0]
    assert info["dupo_leaks"] == [0.0, 1.0, 0.0]
    assert info["dupo_no_answer"] == [0.0, 0.0, 1.0]
    assert info["dupo_has_gold"] == [1.0, 1.0, 0.0]
    assert info["dupo_gold_acc"] == [1.0, 0.0, 0.0]  # "5 with Vb = 4" is not the gold "5"
    assert info["dupo_agrees_with_gold"] == [1.0, 1.0, 0.0]
    assert len(_dual_calls(server)) == 1  # the leaking answer never reached the dual
    for extra in out.non_tensor_batch["turn_scores"], out.non_tensor_batch["tool_rewards"]:
        assert extra.tolist() == [[], [], []]
    assert out.non_tensor_batch["min_global_steps"].tolist() == [1, 1, 1]
    # the V0 trainer would call the reward loop only without rm_scores
    assert "rm_scores" in out.batch.keys()


async def test_v1_as_dict_accepts_output(tiny_lm, tiny_model_path, agent_loop_yaml):
    config = verl_config(
        tiny_model_path, f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}"
    )
    server = make_server(tiny_lm, config, reply_fn=lambda c: "7" if is_dual(c) else "\\boxed{12}")
    _, output = await run_dupo_loop(config, server, plus_row(0, 5, 7))

    field = output.as_dict()  # what AgentLoopWorkerTQ puts into the TransferQueue
    assert field["rm_scores"].shape == field["responses"].shape
    assert field["rm_scores"][-1].item() == 1.0 and field["rm_scores"][:-1].abs().sum().item() == 0
    extra = field["extra_fields"]
    assert extra["min_global_steps"] == 1 and extra["max_global_steps"] == 1
    assert extra["turn_scores"] == [] and extra["tool_rewards"] == []
    assert sorted(extra["reward_extra_info"]) == sorted(METRIC_KEYS)
    stacked = list_of_dict_to_tensordict([field, field])
    assert stacked.batch_size == torch.Size([2])


async def test_planted_server_error_is_retried_counted_not_raised(tiny_lm, tiny_model_path, agent_loop_yaml):
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        "+dupo.max_retries=2",
    )
    server = make_server(
        tiny_lm,
        config,
        reply_fn=lambda c: "4" if is_dual(c) else "\\boxed{7}",
        fail_fn=lambda c: is_dual(c) and "3 + Vb" in c.prompt_text,
    )
    rows = [plus_row(0, 3, 4), plus_row(1, 2, 4, hidden=[("2 + Vb", "4")])]
    out = await make_worker(config, server).generate_sequences(rows_to_batch(rows))

    assert out.non_tensor_batch["dupo_dual_errors"].tolist() == [3.0, 0.0]  # 1 try + 2 retries
    assert out.non_tensor_batch["dupo_reward"].tolist() == [0.0, 1.0]
    assert len([c for c in _dual_calls(server) if "3 + Vb" in c.prompt_text]) == 3


@pytest.mark.parametrize(
    ("answers", "expected"),
    [(["4", "4", "4", "4"], 1.0), (["5", "0", "x", "44"], 0.0), (["4", "9", "Vb = 4", "3"], 0.5)],
)
async def test_scripted_dual_replies_give_the_fraction(
    tiny_lm, tiny_model_path, agent_loop_yaml, answers, expected
):
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        "+dupo.dual_samples=4",
    )
    queue = list(answers)
    server = make_server(tiny_lm, config, reply_fn=lambda c: queue.pop(0) if is_dual(c) else "\\boxed{7}")
    out = await make_worker(config, server).generate_sequences(rows_to_batch([plus_row(0, 3, 4)]))

    assert queue == []
    assert out.non_tensor_batch["dupo_dual_acc"].tolist() == [expected]
    assert out.batch["rm_scores"].sum().item() == pytest.approx(expected)


async def test_shaping_and_hybrid_weight_change_the_reward(tiny_lm, tiny_model_path, agent_loop_yaml):
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        "+dupo.dual_samples=2",
        "+dupo.shaping_lambda=2.0",
        "+dupo.hybrid_weight=0.5",
    )
    queue = ["4", "0"]
    server = make_server(tiny_lm, config, reply_fn=lambda c: queue.pop(0) if is_dual(c) else "\\boxed{7}")
    out = await make_worker(config, server).generate_sequences(rows_to_batch([plus_row(0, 3, 4)]))
    shaped = float(torch.exp(torch.tensor(-2.0 * 0.5)))
    assert out.non_tensor_batch["dupo_reward"][0] == pytest.approx(0.5 * shaped + 0.5 * 1.0)


async def test_dual_prompt_too_long_is_counted_not_truncated(tiny_lm, tiny_model_path, agent_loop_yaml):
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        "actor_rollout_ref.rollout.max_model_len=100",
        "+dupo.dual_max_tokens=90",
        "+dupo.max_retries=0",
        dual_max_tokens=None,
    )
    server = make_server(tiny_lm, config, reply_fn=primal_reply("\\boxed{7}"))
    out = await make_worker(config, server).generate_sequences(rows_to_batch([plus_row(0, 3, 4)]))
    assert _dual_calls(server) == []
    assert out.non_tensor_batch["dupo_dual_errors"].tolist() == [1.0]
    assert out.non_tensor_batch["dupo_reward"].tolist() == [0.0]


async def test_row_without_dupo_info_names_the_row(tiny_lm, tiny_model_path, agent_loop_yaml):
    config = verl_config(
        tiny_model_path, f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}"
    )
    server = make_server(tiny_lm, config)
    row = plus_row(17, 3, 4)
    row["extra_info"] = {"index": 17}
    with pytest.raises(ValueError, match=r"index=17.*extra_info\['dupo'\] is missing"):
        await make_worker(config, server).generate_sequences(rows_to_batch([row]))
    assert server.calls == []  # failed before generating anything


async def test_packaged_yaml_lists_every_option_at_its_default(tiny_model_path, agent_loop_yaml, tiny_lm):
    from omegaconf import OmegaConf

    (entry,) = OmegaConf.to_container(OmegaConf.load(agent_loop_yaml))
    assert set(entry) == {"name", "_target_", "dupo"}  # options under their own key, nothing else
    options = entry["dupo"]
    assert DualOptions.from_mapping(options) == DualOptions()
    assert set(options) == set(DualOptions.__dataclass_fields__)

    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        "actor_rollout_ref.rollout.max_model_len=1024",  # room for the default dual budget (256)
        dual_max_tokens=None,
    )
    loop, _ = await run_dupo_loop(
        config, make_server(tiny_lm, config, reply_fn=primal_reply("x")), plus_row(0, 1, 2)
    )
    assert loop.options == DualOptions()

    config = verl_config(tiny_model_path, "+dupo.dual_sample=3")  # typo
    with pytest.raises(InstantiationException, match=r"unknown DuPO option\(s\) \['dual_sample'\]"):
        await run_dupo_loop(config, make_server(tiny_lm, config), plus_row(0, 1, 2))


@pytest.mark.parametrize(("aggregate", "reward"), [("mean", 0.5), ("min", 0.0)])
async def test_dual_aggregate_reaches_the_loop(tiny_lm, tiny_model_path, agent_loop_yaml, aggregate, reward):
    """An ensemble of two duals, one rebuilt and one not: `min` (all must agree) pays 0, `mean` half."""
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        "+dupo.dual_questions_per_rollout=2",
        f"+dupo.dual_aggregate={aggregate}",
    )
    server = make_server(tiny_lm, config, reply_fn=lambda call: "Vb = 4" if is_dual(call) else "\\boxed{7}")
    rows = [plus_row(0, 3, 4, hidden=[("3 + Vb", "4"), ("Vb + 4", "3")])]
    out = await make_worker(config, server).generate_sequences(rows_to_batch(rows))
    assert len(_dual_calls(server)) == 2
    assert out.non_tensor_batch["dupo_dual_questions"].tolist() == [2.0]
    assert out.non_tensor_batch["dupo_reward"].tolist() == [reward]
    rm = out.batch["rm_scores"]
    assert rm.sum().item() == reward


def _loops_yaml(tmp_path, body: str):
    path = tmp_path / "loops.yaml"
    path.write_text("- name: dupo_agent\n  _target_: dupo_verl.verl.agent_loop.DuPOAgentLoop\n" + body)
    return path


async def test_dupo_options_come_from_their_key_and_other_kwargs_go_to_verl(
    tiny_lm, tiny_model_path, tmp_path
):
    """A constructor kwarg a later verl adds is verl's, not an "unknown DuPO option"."""
    yaml_path = _loops_yaml(
        tmp_path, "  kwarg_of_a_later_verl: 3\n  dupo:\n    dual_samples: 2\n    no_answer_reward: 0\n"
    )
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={yaml_path}",
        "+dupo.max_retries=0",
    )
    server = make_server(tiny_lm, config, reply_fn=lambda c: "4" if is_dual(c) else "\\boxed{7}")
    loop, output = await run_dupo_loop(config, server, plus_row(0, 3, 4))
    assert loop.options == DualOptions(dual_samples=2, max_retries=0, dual_max_tokens=16)
    assert type(loop.options.no_answer_reward) is float
    assert output.reward_score == 1.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  dual_samples: 2\n", r"\['dual_samples'\] are top-level keys.*under its `dupo:` mapping"),
        ("  dupo: 5\n", r"agent-loop YAML's dupo must be a mapping of DuPO options"),
        (
            "  dupo:\n    dual_samples: 2.5\n",
            r"dual_samples=2.5 \(float\) is invalid: expected an integer in \[1, 1024\]",
        ),
    ],
)
async def test_misplaced_or_bad_yaml_options_name_the_problem(
    tiny_lm, tiny_model_path, tmp_path, body, message
):
    yaml_path = _loops_yaml(tmp_path, body)
    config = verl_config(
        tiny_model_path, f"actor_rollout_ref.rollout.agent.agent_loop_config_path={yaml_path}"
    )
    with pytest.raises(InstantiationException, match=message):
        await run_dupo_loop(config, make_server(tiny_lm, config), plus_row(0, 1, 2))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+dupo.no_answer_reward=nan", r"no_answer_reward=nan \(float\) is invalid"),
        ("+dupo.dual_top_p=7", r"dual_top_p=7 \(int\) is invalid: expected a finite number in \(0, 1\]"),
        ("+dupo.max_retries=1.5", r"max_retries=1.5 \(float\) is invalid"),
        ("+dupo=5", r"\+dupo must be a mapping of DuPO options"),
    ],
)
async def test_bad_override_stops_the_loop_at_start_up(
    tiny_lm, tiny_model_path, agent_loop_yaml, override, message
):
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        override,
        dual_max_tokens=None,
    )
    server = make_server(tiny_lm, config)
    with pytest.raises(InstantiationException, match=message):
        await run_dupo_loop(config, server, plus_row(0, 1, 2))
    assert server.calls == []


class DualNeverAnswers(TinyLMServer):
    """verl's server contract, except that a dual request is accepted and never answered."""

    async def generate(self, request_id, **kwargs):
        if "DUAL " in self.lm.tokenizer.decode(kwargs["prompt_ids"]):
            self.hung = getattr(self, "hung", 0) + 1
            await asyncio.Event().wait()
        return await super().generate(request_id, **kwargs)


async def test_dual_server_that_never_answers_does_not_hang_the_step(
    tiny_lm, tiny_model_path, agent_loop_yaml
):
    config = verl_config(
        tiny_model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        "+dupo.dual_timeout_s=0.2",
        "+dupo.max_retries=1",
        "+dupo.dual_samples=2",
    )
    rollout = config.actor_rollout_ref.rollout
    server = DualNeverAnswers(
        tiny_lm,
        prompt_length=rollout.prompt_length,
        response_length=rollout.response_length,
        max_model_len=rollout.max_model_len,
        reply_fn=primal_reply("\\boxed{7}"),
    )
    worker = make_worker(config, server)
    out = await asyncio.wait_for(worker.generate_sequences(rows_to_batch([plus_row(0, 3, 4)])), 120)
    assert server.hung == 2 * 2  # K=2 samples, one try and one retry
    info = {k: out.non_tensor_batch[k].tolist() for k in METRIC_KEYS}
    assert info["dupo_dual_timeouts"] == [2.0] and info["dupo_dual_errors"] == [2.0]
    assert info["dupo_dual_samples"] == [0.0] and info["dupo_dual_missing"] == [2.0]
    assert info["dupo_reward"] == [0.0] and out.batch["rm_scores"].sum().item() == 0.0
