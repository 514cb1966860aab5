"""Likelihood duals (`+dupo.dual_mode=likelihood`) through verl's real `AgentLoopWorker`, the reward
loop's router and the offline backends, all served by the tiny real model.

The reference for every log-prob is the model itself, teacher-forced (`TinyLM.score`), never the
code under test.
"""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_server import serve_chat_completions
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

from dupo_verl.generation import MicroBatcher
from dupo_verl.generation.hf import HFBackend
from dupo_verl.likelihood import chat_prompt_ids, reply_token_ids
from dupo_verl.scoring import METRIC_KEYS, DualOptions, score_response
from dupo_verl.tasks import DualQuestion, DualReply, LikelihoodUnsupported, get_task
from dupo_verl.verl.generate import RouterGenerate, ServerGenerate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for openai_server
from openai_server import TinyOpenAIServer  # noqa: E402

LIKELIHOOD = "+dupo.dual_mode=likelihood"


def _config(model_path, *overrides):
    return verl_config(model_path, LIKELIHOOD, *overrides)


def _reference(tiny_lm, messages, reply: DualReply) -> list[float]:
    """The value tokens' log-probs, teacher-forced by the model (prompt + prefix as context)."""
    tokens = reply_token_ids(tiny_lm.tokenizer, chat_prompt_ids(tiny_lm.tokenizer, messages), reply)
    return tiny_lm.score(tokens.ids[: tokens.start], tokens.value_ids)


async def test_agent_loop_reads_prompt_logprobs_from_the_server(tiny_lm, tiny_model_path, agent_loop_yaml):
    config = _config(
        tiny_model_path, f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}"
    )
    server = make_server(tiny_lm, config, reply_fn=primal_reply("The sum is \\boxed{7}"))
    out = await make_worker(config, server).generate_sequences(
        rows_to_batch([plus_row(0, 3, 4), plus_row(1, 10, 5)])
    )

    dual_calls = [c for c in server.calls if is_dual(c)]
    assert len(dual_calls) == 2
    task = get_task("verl_test_plus")
    rm = out.batch["rm_scores"].sum(-1).tolist()
    for i, (a, b) in enumerate([(3, 4), (10, 5)]):
        call = next(c for c in dual_calls if f"DUAL {a} + Vb" in c.prompt_text)
        # one prefill: no decoding beyond the one token vLLM must emit, prompt log-probs asked for
        assert call.sampling_params["max_tokens"] == 1 and call.sampling_params["prompt_logprobs"] == 0
        assert len(call.output_ids) == 1
        dual = DualQuestion(masked_text=f"{a} + Vb", variable="Vb", value=str(b))
        messages = task.dual_messages(dual, "7")
        value_ids = tiny_lm.tokenizer.encode(str(b), add_special_tokens=False)
        assert call.prompt_ids[-len(value_ids) :] == value_ids  # the value closes the prefill
        ref = _reference(tiny_lm, messages, task.dual_reply(dual))
        mean = sum(ref) / len(ref)
        assert rm[i] == pytest.approx(math.exp(mean), rel=1e-4)
        assert out.non_tensor_batch["dupo_dual_logprob"][i] == pytest.approx(mean, abs=1e-4)
        assert out.non_tensor_batch["dupo_dual_logprob_sum"][i] == pytest.approx(sum(ref), abs=1e-4)
        assert out.non_tensor_batch["dupo_dual_samples"][i] == 1.0
        assert out.non_tensor_batch["dupo_dual_errors"][i] == 0.0
    for key in METRIC_KEYS:
        assert key in out.non_tensor_batch


async def test_leak_and_no_answer_keep_their_meaning(tiny_lm, tiny_model_path):
    config = _config(tiny_model_path)
    # the answer names the hidden value 4: a leak, no dual call; an answer without \boxed: no answer
    for reply, key in (("\\boxed{4}", "dupo_leaks"), ("no idea", "dupo_no_answer")):
        server = make_server(tiny_lm, config, reply_fn=primal_reply(reply))
        _, output = await run_dupo_loop(config, server, plus_row(0, 3, 4))
        info = output.extra_fields["reward_extra_info"]
        assert info[key] == 1.0 and info["dupo_dual_questions"] == 0.0 and info["dupo_dual_logprob"] == 0.0
        assert output.reward_score == 0.0 and not [c for c in server.calls if is_dual(c)]


async def test_server_without_prompt_logprobs_is_a_counted_dual_error(tiny_lm, tiny_model_path):
    config = _config(tiny_model_path, "+dupo.max_retries=1")
    server = make_server(tiny_lm, config, reply_fn=primal_reply("\\boxed{7}"))
    real_generate = server.generate

    async def no_prompt_logprobs(request_id, *, prompt_ids, sampling_params, **kwargs):
        params = {k: v for k, v in sampling_params.items() if k != "prompt_logprobs"}
        return await real_generate(request_id, prompt_ids=prompt_ids, sampling_params=params, **kwargs)

    server.generate = no_prompt_logprobs
    _, output = await run_dupo_loop(config, server, plus_row(0, 3, 4))
    info = output.extra_fields["reward_extra_info"]
    assert info["dupo_dual_errors"] == 2.0 and output.reward_score == 0.0  # 1 try + 1 retry, then 0
    assert info["dupo_dual_logprob"] == 0.0


def test_dual_mode_is_validated():
    with pytest.raises(ValueError, match="dual_mode=.logprob"):
        DualOptions.from_mapping({"dual_mode": "logprob"})
    assert DualOptions.from_mapping({"dual_mode": "likelihood"}).dual_mode == "likelihood"


async def test_task_that_cannot_be_scored_stops_with_a_clear_error(tiny_lm, tiny_model_path):
    class NoLikelihood(type(get_task("verl_test_plus"))):
        def check_likelihood(self) -> None:
            raise LikelihoodUnsupported("the dual replies in free prose; the value cannot be written")

    task = NoLikelihood()
    with pytest.raises(LikelihoodUnsupported, match="free prose"):
        await score_response(
            task,
            task.decompose({"a": 1, "b": 2}).duals,
            "\\boxed{3}",
            None,
            DualOptions(dual_mode="likelihood"),
            "s",
        )


# -- every task's template: the located tokens are the value's ---------------------------------

_DIGITS = st.integers(min_value=0, max_value=10**9).map(str)
_WORD = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu")), min_size=1, max_size=12)
_SENTENCE = st.text(min_size=1, max_size=60).filter(lambda t: t.strip() == t and t.strip())


def _task_duals():
    """(task, dual question for a value, value strategy) for every built-in task's template."""
    return [
        (get_task("two_sum"), lambda v: DualQuestion("12+V=", "V", v), _DIGITS),
        (get_task("two_sum_inverse"), lambda v: DualQuestion("12", "V", v), _DIGITS),
        (
            get_task("math"),
            lambda v: DualQuestion("Tom has V apples and eats 3.", "V", v, template=1),
            _DIGITS,
        ),
        (get_task("span"), lambda v: DualQuestion("Who wrote [MASK]?", "[MASK]", v), _WORD),
        (get_task("span", mode="document"), lambda v: DualQuestion("A. [MASK] C.", "[MASK]", v), _SENTENCE),
        (
            get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn"),
            lambda v: DualQuestion("", "", v),
            _SENTENCE,
        ),
    ]


@pytest.mark.parametrize("index", range(len(_task_duals())), ids=lambda i: _task_duals()[i][0].name)
def test_value_tokens_located_for_every_task_template(tiny_lm, index):
    task, make_dual, values = _task_duals()[index]
    tokenizer = tiny_lm.tokenizer
    # The tokenizer normalises text (e.g. NFC: the Ohm sign becomes Omega); the value's tokens are
    # those of the normalised value, so every text is compared after the same normalisation.
    normalizer = tokenizer.backend_tokenizer.normalizer
    norm = normalizer.normalize_str if normalizer is not None else (lambda text: text)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=values)
    def check(value):
        dual = make_dual(value)
        answer = "47" if task.name.startswith("two_sum") else "some answer"
        messages = task.dual_messages(dual, answer)
        reply = task.dual_reply(dual)
        assert reply.value == value and value in reply.text
        tokens = reply_token_ids(tokenizer, chat_prompt_ids(tokenizer, messages), reply)
        assert tokenizer.decode(tokens.value_ids) == norm(value)
        # prompt + prefix + value is the chat template's own rendering of that reply, up to the value's end
        full = norm(
            tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": reply.text}], tokenize=False)
        )
        rendered = tokenizer.decode(tokens.ids)
        assert full.startswith(rendered) and rendered.endswith(norm(reply.prefix + value))
        assert full[len(rendered) :].startswith(norm(reply.suffix))

    check()


def test_math_reply_is_boxed():
    task = get_task("math")
    reply = task.dual_reply(DualQuestion("x V", "V", "1,000"))
    assert (reply.prefix, reply.value, reply.suffix) == ("\\boxed{", "1,000", "}")


# -- the same log-probs from every backend -----------------------------------------------------


def _questions():
    task = get_task("verl_test_plus")
    duals = [DualQuestion(f"{a} + Vb", "Vb", str(b)) for a, b in ((3, 4), (10, 15), (7, 123))]
    return task, [(task.dual_messages(d, "7"), task.dual_reply(d)) for d in duals]


async def test_hf_backend_matches_the_rollout_server(tiny_lm, tiny_model_path):
    config = _config(tiny_model_path)
    server = make_server(tiny_lm, config, reply_fn=primal_reply("\\boxed{7}"))
    loop, _ = await run_dupo_loop(config, server, plus_row(0, 3, 4))
    # the agent loop's own prompt building (verl's continuous token builder)
    live = ServerGenerate(server, loop.tokenizer, loop._dual_prompt_ids, loop._context_limit())
    _, questions = _questions()
    backend = HFBackend(str(tiny_model_path), dtype="float32")
    async with MicroBatcher(backend) as batcher:
        for i, (messages, reply) in enumerate(questions):
            from_server = await live.value_logprobs(messages, reply, session_id=f"s{i}")
            from_hf = await batcher.value_logprobs(messages, reply, session_id=f"s{i}")
            assert len(from_server) == len(tiny_lm.tokenizer.encode(reply.value, add_special_tokens=False))
            assert from_hf == pytest.approx(from_server, abs=1e-4)
            assert from_server == pytest.approx(_reference(tiny_lm, messages, reply), abs=1e-5)


async def test_router_and_openai_backend_match(tiny_lm, tiny_model_path):
    import aiohttp

    from dupo_verl.generation.openai_http import OpenAIBackend

    _, questions = _questions()
    runner, address, requests = await serve_chat_completions(tiny_lm, model_name=str(tiny_model_path))
    try:
        async with aiohttp.ClientSession() as session:
            router = RouterGenerate(address, session, model=str(tiny_model_path), tokenizer=tiny_lm.tokenizer)
            via_router = [await router.value_logprobs(m, r, session_id="x") for m, r in questions]
    finally:
        await runner.cleanup()
    assert all(body["prompt_logprobs"] == 0 and body["max_tokens"] == 1 for body in requests)
    with TinyOpenAIServer(tiny_model_path) as server:
        async with MicroBatcher(OpenAIBackend(server.base_url, tokenizer=str(tiny_model_path))) as batcher:
            via_openai = [await batcher.value_logprobs(m, r, session_id="x") for m, r in questions]
            await batcher.backend.aclose()
    for (messages, reply), a, b in zip(questions, via_router, via_openai, strict=True):
        ref = _reference(tiny_lm, messages, reply)
        assert a == pytest.approx(ref, abs=1e-5) and b == pytest.approx(ref, abs=1e-5)


async def test_reward_manager_in_likelihood_mode(tiny_lm, tiny_model_path):
    from test_reward_manager import reward_config, scored_batch

    from dupo_verl.verl.reward_manager import DuPORewardManager

    runner, address, requests = await serve_chat_completions(tiny_lm, model_name=str(tiny_model_path))
    try:
        config = reward_config(tiny_model_path, LIKELIHOOD)
        with pytest.raises(ValueError, match="tokenizer"):
            DuPORewardManager(config, tiny_lm.tokenizer, None, reward_router_address=address)
        manager = DuPORewardManager(
            config,
            tiny_lm.tokenizer,
            None,
            reward_router_address=address,
            reward_model_tokenizer=tiny_lm.tokenizer,
        )
        result = await manager.run_single(scored_batch(tiny_lm.tokenizer, plus_row(0, 3, 4), "so \\boxed{7}"))
    finally:
        await runner.cleanup()
    task = get_task("verl_test_plus")
    dual = DualQuestion("3 + Vb", "Vb", "4")
    ref = _reference(tiny_lm, task.dual_messages(dual, "7"), task.dual_reply(dual))
    assert sorted(result["reward_extra_info"]) == sorted(METRIC_KEYS)
    assert result["reward_score"] == pytest.approx(math.exp(sum(ref) / len(ref)), rel=1e-4)
    assert [b.get("prompt_logprobs") for b in requests] == [0]


# -- filter and rerank: the same judge through the offline backends ----------------------------


async def test_offline_dual_table_in_likelihood_mode(tiny_lm, tiny_model_path):
    from dupo_verl.offline.dual_eval import dual_table

    task = get_task("verl_test_plus")
    duals = [DualQuestion("3 + Vb", "Vb", "4"), DualQuestion("3 + Vb", "Vb", "17")]
    answers = ["7", "20", "4"]  # "4" leaks the first question's value
    async with MicroBatcher(HFBackend(str(tiny_model_path), dtype="float32")) as batcher:
        table = await dual_table(task, duals, answers, batcher, DualOptions(dual_mode="likelihood"), "p0")
        assert batcher.stats.requests == 5  # 6 cells, one leaked
    assert table[2][0].leaked and table[2][0].accuracy is None
    for a, answer in enumerate(answers):
        for q, dual in enumerate(duals):
            if a == 2 and q == 0:
                continue
            ref = _reference(tiny_lm, task.dual_messages(dual, answer), task.dual_reply(dual))
            assert table[a][q].accuracy == pytest.approx(math.exp(sum(ref) / len(ref)), rel=1e-4)
            assert table[a][q].samples == 1 and not table[a][q].failed


def test_filter_cli_in_likelihood_mode(shared_data, tiny_model_path, tmp_path):
    import json

    from dupo_verl.cli import main

    raw = tmp_path / "math500.jsonl"
    with (shared_data / "math" / "math500_test.jsonl").open(encoding="utf-8") as fh:
        raw.write_text("".join(next(fh) for _ in range(3)), encoding="utf-8")
    prepared = tmp_path / "math500.parquet"
    assert (
        main(
            [
                "prepare",
                "math",
                "--input",
                str(raw),
                "--output",
                str(prepared),
                "--max-duals-per-problem",
                "2",
            ]
        )
        == 0
    )
    out = tmp_path / "filtered.parquet"
    args = ["filter", "--input", str(prepared), "--output", str(out), "--backend", "hf", "--model"]
    args += [str(tiny_model_path), "--candidates", "2", "--max-tokens", "8", "--no-progress"]
    code = main([*args, "--dual-mode", "likelihood"])
    report = json.loads((tmp_path / "filtered.parquet.report.json").read_text())
    # a filter that keeps nothing (the random tiny model answers no question) writes nothing, exits 1
    assert (code, out.exists()) == ((0, True) if report["problems"]["kept"] else (1, False))
    g = report["generations"]
    # one prefill per (answer, question) pair: one "sample" each, no dual tokens generated
    assert g["dual_requests"] > 0 and g["dual_samples"] == g["dual_requests"] and g["failed_requests"] == 0


# -- the anchored judge: live self-dual (agent loop) + frozen judge (reward loop) ---------------


class _LocalActor:
    """What a Ray actor handle of `RewardLoopWorker` offers `AgentLoopWorker`: `compute_score.remote(data)`."""

    def __init__(self, worker) -> None:
        self.compute_score = type("Method", (), {"remote": staticmethod(worker.compute_score)})


def _anchored_config(model_path, agent_loop_yaml, *overrides):
    from test_reward_manager import reward_config

    return reward_config(
        model_path,
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}",
        "reward.reward_manager.name=dupo",
        "+dupo.judge=anchored",
        *overrides,
    )


async def _anchored_run(tiny_lm, config, rows, live_reply, frozen_reply=None):
    """verl's AgentLoopWorker with verl's RewardLoopWorker behind it (the frozen judge on a local router)."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    runner, address, requests = await serve_chat_completions(
        tiny_lm, model_name=str(config.reward.reward_model.model_path), reply_fn=frozen_reply
    )
    try:
        reward_worker = RewardLoopWorker(config, reward_router_address=address)
        server = make_server(tiny_lm, config, reply_fn=live_reply)
        worker = make_worker(config, server)
        worker.reward_loop_worker_handles = [_LocalActor(reward_worker)]
        out = await worker.generate_sequences(rows_to_batch(rows))
    finally:
        await runner.cleanup()
    return out, server, requests


@pytest.mark.parametrize("aggregate,expected", [("min", 0.0), ("mean", 0.5)])
async def test_anchored_judge_combines_live_and_frozen_verdicts(
    tiny_lm, tiny_model_path, agent_loop_yaml, aggregate, expected
):
    config = _anchored_config(tiny_model_path, agent_loop_yaml, f"+dupo.dual_aggregate={aggregate}")

    def live(call):  # the live dual rebuilds b; the frozen one does not
        return "Vb = 4" if is_dual(call) else "so \\boxed{7}"

    out, server, requests = await _anchored_run(
        tiny_lm, config, [plus_row(0, 3, 4)], live, frozen_reply=lambda messages, body: "6"
    )
    assert len([c for c in server.calls if is_dual(c)]) == 1 and len(requests) == 1
    assert out.batch["rm_scores"].sum().item() == pytest.approx(expected)
    info = {k: out.non_tensor_batch[k][0] for k in METRIC_KEYS}
    assert info["dupo_judge_disagreement"] == 1.0 and info["dupo_dual_questions"] == 2.0
    assert info["dupo_reward"] == pytest.approx(expected)
    # what the dupo_* V1 trainers log each step
    from dupo_verl.verl.trainer import summarize_reward_extra_info

    assert summarize_reward_extra_info([info])["dupo/judge_disagreement/mean"] == 1.0

    # both judges right: no disagreement, full reward
    out, _, _ = await _anchored_run(
        tiny_lm, config, [plus_row(0, 3, 4)], live, frozen_reply=lambda messages, body: "4"
    )
    assert out.non_tensor_batch["dupo_judge_disagreement"][0] == 0.0
    assert out.batch["rm_scores"].sum().item() == 1.0


async def test_anchored_judge_in_likelihood_mode(tiny_lm, tiny_model_path, agent_loop_yaml):
    config = _anchored_config(tiny_model_path, agent_loop_yaml, LIKELIHOOD)
    out, server, requests = await _anchored_run(
        tiny_lm, config, [plus_row(0, 3, 4)], primal_reply("so \\boxed{7}")
    )
    # the live prefill on the rollout server, the frozen one on the router's completions endpoint
    (live_call,) = [c for c in server.calls if is_dual(c)]
    assert live_call.sampling_params["prompt_logprobs"] == 0 and requests[0]["prompt_logprobs"] == 0
    task = get_task("verl_test_plus")
    dual = DualQuestion("3 + Vb", "Vb", "4")
    ref = _reference(tiny_lm, task.dual_messages(dual, "7"), task.dual_reply(dual))
    # the frozen judge is the same tiny model here, so both verdicts are the same similarity
    assert out.batch["rm_scores"].sum().item() == pytest.approx(math.exp(sum(ref) / len(ref)), rel=1e-4)
    assert out.non_tensor_batch["dupo_dual_logprob"][0] == pytest.approx(sum(ref) / len(ref), abs=1e-4)
    assert out.non_tensor_batch["dupo_judge_disagreement"][0] == 0.0


def test_anchored_judge_without_a_frozen_judge_fails_at_start_up(tiny_lm, tiny_model_path):
    config = verl_config(tiny_model_path, "+dupo.judge=anchored")
    server = make_server(tiny_lm, config)
    with pytest.raises(Exception, match="reward.reward_manager.name=dupo"):
        import asyncio

        asyncio.run(run_dupo_loop(config, server, plus_row(0, 3, 4)))


async def test_anchored_reward_manager_reads_the_live_verdict_from_a_batch_column(tiny_lm, tiny_model_path):
    """The reward computed after the rollout (no streaming reward): the verdict is a batch column."""
    import numpy as np
    from test_reward_manager import reward_config, scored_batch

    from dupo_verl.verl.anchor import LIVE_JUDGE_FIELD, live_verdict
    from dupo_verl.verl.reward_manager import DuPORewardManager

    runner, address, _ = await serve_chat_completions(
        tiny_lm, model_name=str(tiny_model_path), reply_fn=lambda messages, body: "4"
    )
    try:
        # the live verdict's options (mean) win over the trainer config's (min): one set for both judges
        config = reward_config(tiny_model_path, "+dupo.judge=anchored", "+dupo.dual_aggregate=min")
        manager = DuPORewardManager(config, tiny_lm.tokenizer, None, reward_router_address=address)
        batch = scored_batch(tiny_lm.tokenizer, plus_row(0, 3, 4), "so \\boxed{7}")
        with pytest.raises(ValueError, match="no live verdict"):
            await manager.run_single(batch)
        live = {**dict.fromkeys(METRIC_KEYS, 0.0), "dupo_dual_acc": 0.0, "dupo_dual_questions": 1.0,
                "dupo_dual_samples": 1.0}
        column = np.empty(1, dtype=object)
        column[0] = live_verdict(live, DualOptions(judge="anchored", dual_aggregate="mean"))
        batch.non_tensor_batch[LIVE_JUDGE_FIELD] = column
        result = await manager.run_single(batch)
    finally:
        await runner.cleanup()
    assert result["reward_score"] == pytest.approx(0.5)  # frozen right (1.0), live wrong (0.0), mean
    assert result["reward_extra_info"]["dupo_judge_disagreement"] == 1.0


@pytest.mark.parametrize("mode", ["likelihood", "greedy"])
async def test_identical_questions_in_flight_are_asked_once_through_the_agent_loop(tiny_lm, tiny_model_path,
                                                                                    agent_loop_yaml, mode):
    """Four rollouts that gave the same answer ask the dual the same question: one prefill (or one
    greedy dual answer) serves them, and each gets the verdict it would have read itself."""
    from tiny_server import TinyLMServer

    from dupo_verl.shared_calls import in_flight

    class GatedDualServer(TinyLMServer):
        """Holds every dual call until the test opens the gate."""

        gate: asyncio.Event | None = None

        async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
            if "DUAL " in self.lm.tokenizer.decode(prompt_ids):
                await self.gate.wait()
            return await super().generate(request_id, prompt_ids=prompt_ids, sampling_params=sampling_params, **kwargs)

    loops = f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loop_yaml}"
    config = (_config(tiny_model_path, loops) if mode == "likelihood" else
              verl_config(tiny_model_path, loops, "+dupo.dual_temperature=0", "+dupo.dual_samples=2"))
    rollout = config.actor_rollout_ref.rollout
    server = GatedDualServer(tiny_lm, prompt_length=rollout.prompt_length, response_length=rollout.response_length,
                             max_model_len=rollout.max_model_len, reply_fn=primal_reply("The sum is \\boxed{7}"))
    server.gate = asyncio.Event()
    rows = [plus_row(i, 3, 4) for i in range(4)] + [plus_row(4, 10, 5)]
    run = asyncio.create_task(make_worker(config, server).generate_sequences(rows_to_batch(rows)))
    while in_flight()[1] < len(rows):  # every rollout is asking (as the first asker or joined to it)
        assert not run.done(), run.exception() if run.done() else None
        await asyncio.sleep(0.005)
    server.gate.set()
    out = await asyncio.wait_for(run, 120)

    # one per distinct question (x 2 greedy samples), not one per rollout
    assert len([c for c in server.calls if is_dual(c)]) == (2 if mode == "likelihood" else 4)
    assert in_flight() == (0, 0)
    task = get_task("verl_test_plus")
    rm = out.batch["rm_scores"].sum(-1).tolist()
    if mode == "greedy":
        assert len(set(rm[:4])) == 1 and all(out.non_tensor_batch["dupo_dual_samples"] == 2.0)
        assert all(out.non_tensor_batch["dupo_dual_errors"] == 0.0)
        return
    for i, (a, b) in enumerate([(3, 4)] * 4 + [(10, 5)]):
        dual = DualQuestion(masked_text=f"{a} + Vb", variable="Vb", value=str(b))
        ref = _reference(tiny_lm, task.dual_messages(dual, "7"), task.dual_reply(dual))
        assert rm[i] == pytest.approx(math.exp(sum(ref) / len(ref)), rel=1e-4)
        assert out.non_tensor_batch["dupo_dual_errors"][i] == 0.0
