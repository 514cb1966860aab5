"""Faults of the judge's wiring inside verl that a fifth outside probe found: each test fails on the
code before the fix (an anchored setting lost, a failed judge counted as a verdict, one sample's
timeout failing another's shared call, settings that zero every reward found only at run time)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from hydra.errors import InstantiationException
from test_likelihood import _anchored_config, _anchored_run
from test_reward_manager import reward_config, scored_batch
from tiny_server import serve_routes
from verl_helpers import is_dual, make_server, plus_row, primal_reply, run_dupo_loop, verl_config

from dupo_verl.scoring import METRIC_KEYS
from dupo_verl.shared_calls import in_flight
from dupo_verl.verl.reward_manager import DuPORewardManager


def _yaml_with(agent_loop_yaml, tmp_path, *edits: tuple[str, str]) -> Path:
    text = Path(agent_loop_yaml).read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "agent_loop.yaml"
    path.write_text(text)
    return path


async def test_judge_anchored_in_the_agent_loop_yaml_reaches_the_frozen_judge(
    tiny_lm, tiny_model_path, agent_loop_yaml, tmp_path
):
    """`judge: anchored` set only in the YAML: the reward manager combined nothing and paid the frozen
    verdict alone (1.0) after the live dual call had been made and paid for."""
    path = _yaml_with(agent_loop_yaml, tmp_path, ("judge: self", "judge: anchored"),
                      ("dual_aggregate: mean", "dual_aggregate: min"))
    config = reward_config(tiny_model_path, f"actor_rollout_ref.rollout.agent.agent_loop_config_path={path}",
                           "reward.reward_manager.name=dupo")

    def live(call):  # the live dual is wrong (6), the frozen one right (4)
        return "Vb = 6" if is_dual(call) else "so \\boxed{7}"

    out, _, requests = await _anchored_run(tiny_lm, config, [plus_row(0, 3, 4)], live,
                                           frozen_reply=lambda messages, body: "4")
    info = {key: float(out.non_tensor_batch[key][0]) for key in METRIC_KEYS}
    assert requests  # the frozen judge was asked
    assert out.batch["rm_scores"].sum().item() == 0.0  # min(live 0, frozen 1)
    assert info["dupo_dual_questions"] == 2.0 and info["dupo_judge_disagreement"] == 1.0


@pytest.mark.parametrize("aggregate", ["min", "mean"])
async def test_a_frozen_judge_that_fails_leaves_the_verdict_to_the_live_one(
    tiny_lm, tiny_model_path, agent_loop_yaml, aggregate
):
    """A frozen server that is down is no verdict of 0 and no disagreement: the live judge decides."""
    config = _anchored_config(tiny_model_path, agent_loop_yaml, f"+dupo.dual_aggregate={aggregate}",
                              "+dupo.max_retries=0")

    def down(messages, body):
        raise RuntimeError("frozen server down")

    def live(call):  # the live dual is right
        return "Vb = 4" if is_dual(call) else "so \\boxed{7}"

    out, _, _ = await _anchored_run(tiny_lm, config, [plus_row(0, 3, 4)], live, frozen_reply=down)
    info = {key: float(out.non_tensor_batch[key][0]) for key in METRIC_KEYS}
    assert out.batch["rm_scores"].sum().item() == 1.0
    assert info["dupo_judge_disagreement"] == 0.0
    assert info["dupo_dual_errors"] >= 1.0  # the outage is counted, not hidden


async def test_one_samples_timeout_does_not_fail_another_samples_shared_call(tiny_lm, tiny_model_path):
    """Two samples ask the frozen judge the same likelihood question; the first gives up (its timeout
    is a cancellation) while the call is in flight. The per-sample HTTP session closed under the
    second sample, which then failed although the server answered."""
    gate = asyncio.Event()
    seen: list[dict] = []

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        await gate.wait()
        entries = [None] + [{str(t): {"logprob": -0.1, "rank": 1}} for t in body["prompt"][1:]]
        return web.json_response({"choices": [{"index": 0, "text": "", "prompt_logprobs": entries}]})

    runner, address = await serve_routes({"/v1/completions": completions})
    try:
        config = reward_config(tiny_model_path, "+dupo.dual_mode=likelihood", "+dupo.dual_questions_per_rollout=1",
                               "+dupo.max_retries=0")
        manager = DuPORewardManager(config, tiny_lm.tokenizer, None, reward_router_address=address,
                                    reward_model_tokenizer=tiny_lm.tokenizer)

        def batch():
            return scored_batch(tiny_lm.tokenizer, plus_row(0, 3, 4), "so \\boxed{7}")

        async def until(condition) -> None:
            for _ in range(2000):
                if condition():
                    return
                await asyncio.sleep(0.005)
            raise AssertionError("the calls never reached the expected state")

        first = asyncio.ensure_future(manager.run_single(batch()))
        await until(lambda: len(seen) == 1 and in_flight()[1] == 1)
        second = asyncio.ensure_future(manager.run_single(batch()))
        await until(lambda: in_flight()[1] == 2)  # the second joined the first one's call
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        gate.set()
        result = await asyncio.wait_for(second, 60)
    finally:
        gate.set()
        await runner.cleanup()
    info = result["reward_extra_info"]
    assert len(seen) == 1 and info["dupo_dual_errors"] == 0.0
    assert result["reward_score"] == pytest.approx(2.718281828 ** -0.1, rel=1e-6)


async def test_a_dual_budget_over_the_context_fails_at_start_up(tiny_lm, tiny_model_path):
    """Every dual call would be too long: all rewards a counted 0 at every step, found only in the log."""
    config = verl_config(tiny_model_path, dual_max_tokens=500)  # context 96 + 24
    with pytest.raises(InstantiationException, match=r"dupo.dual_max_tokens=500 .* context of 120 tokens"):
        await run_dupo_loop(config, make_server(tiny_lm, config, reply_fn=primal_reply("so \\boxed{7}")),
                            plus_row(0, 3, 4))
    # likelihood duals generate one token: the budget does not apply
    config = verl_config(tiny_model_path, "+dupo.dual_mode=likelihood", dual_max_tokens=500)
    await run_dupo_loop(config, make_server(tiny_lm, config, reply_fn=primal_reply("so \\boxed{7}")),
                        plus_row(0, 3, 4))


def test_the_frozen_judges_budget_is_checked_against_its_context(tiny_lm, tiny_model_path):
    config = reward_config(tiny_model_path, "reward.reward_model.rollout.max_model_len=200", dual_max_tokens=256)
    with pytest.raises(ValueError, match=r"dual_max_tokens=256 .* 200 tokens of the reward model"):
        DuPORewardManager(config, tiny_lm.tokenizer, None, reward_router_address="127.0.0.1:1")


@pytest.mark.parametrize("key", ["dupo_options", "Dupo", "dual_mod"])
async def test_a_misspelt_dupo_key_in_the_yaml_entry_is_named(tiny_lm, tiny_model_path, agent_loop_yaml, tmp_path, key):
    """verl takes and ignores unknown entry keys: `dupo_options:` ran in sample mode with no word."""
    if key == "dual_mod":
        edits = (("  dupo:\n", f"  {key}: likelihood\n  dupo:\n"),)
    else:
        edits = (("  dupo:\n", f"  {key}:\n"),)
    path = _yaml_with(agent_loop_yaml, tmp_path, *edits)
    config = verl_config(tiny_model_path, f"actor_rollout_ref.rollout.agent.agent_loop_config_path={path}")
    with pytest.raises(InstantiationException, match=rf"unknown key\(s\) \['{key}'\] in the dupo_agent entry"):
        await run_dupo_loop(config, make_server(tiny_lm, config, reply_fn=primal_reply("x")), plus_row(0, 3, 4))


def test_anchored_rows_not_rolled_out_by_dupo_agent_fail_at_start_up(tiny_lm, tiny_model_path, tmp_path):
    """They carry no live verdict: found before, at their first score (perhaps the first validation)."""
    import pandas as pd

    rows = [plus_row(i, 3, 4) for i in range(3)]
    rows[2]["agent_name"] = "single_turn_agent"
    path = tmp_path / "train.parquet"
    pd.DataFrame(rows).to_parquet(path)
    config = reward_config(tiny_model_path, "+dupo.judge=anchored", "reward.reward_manager.name=dupo",
                           "actor_rollout_ref.rollout.agent.default_agent_loop=dupo_agent",
                           f"data.train_files={path}", f"data.val_files={path}")
    with pytest.raises(ValueError, match=r"row 2 of the train file .*\(agent_name='single_turn_agent'\)"):
        DuPORewardManager(config, tiny_lm.tokenizer, None, reward_router_address="127.0.0.1:1")
    pd.DataFrame(rows[:2]).drop(columns=["agent_name"], errors="ignore").to_parquet(path)
    DuPORewardManager(config, tiny_lm.tokenizer, None, reward_router_address="127.0.0.1:1")
    config = reward_config(tiny_model_path, "+dupo.judge=anchored", "reward.reward_manager.name=dupo",
                           "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent",
                           f"data.train_files={path}", f"data.val_files={path}")
    with pytest.raises(ValueError, match="no agent_name column; default_agent_loop='single_turn_agent'"):
        DuPORewardManager(config, tiny_lm.tokenizer, None, reward_router_address="127.0.0.1:1")
