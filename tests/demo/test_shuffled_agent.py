"""`dupo_shuffled_agent` inside verl's own AgentLoopWorker: DuPO's pipeline, a coin for a reward."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "verl"))
from verl_helpers import TinyLM, make_server, make_worker, plus_row, verl_config  # noqa: E402

from dupo_verl.demo import shuffled_agent  # noqa: E402
from dupo_verl.demo.two_sum_demo import AGENT_LOOP_YAML  # noqa: E402

_DUAL = re.compile(r"DUAL (\d+) \+ Vb = (\d+)")


def _dual_reply(call) -> str | None:
    """Primal: always the right sum. Dual: right for even `a`, off by one for odd `a`."""
    match = _DUAL.search(call.prompt_text)
    if not match:
        a, b = map(int, re.search(r"What is (\d+) \+ (\d+)", call.prompt_text).groups())
        return f"\\boxed{{{a + b}}}"
    a, s = int(match.group(1)), int(match.group(2))
    return str(s - a) if a % 2 == 0 else str(s - a + 1)


@pytest.fixture()
def loops_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "loops.yaml"
    path.write_text(AGENT_LOOP_YAML.format(coin_window=64))
    return path


async def _run_rows(
    model_path: Path, loops_yaml: Path, pid: int | None = None, rows: int = 40
) -> tuple[list[float], list[float]]:
    """One "run": a fresh worker state, `rows` rows through `dupo_shuffled_agent`; (real rewards, coins paid).

    `pid`: the process id the worker's coin sees when it is made (two runs never share one).
    """
    import hydra
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry
    from verl.utils.dataset.rl_dataset import RLHFDataset

    shuffled_agent._COIN = None  # a new worker process
    config = verl_config(model_path, f"actor_rollout_ref.rollout.agent.agent_loop_config_path={loops_yaml}")
    server = make_server(TinyLM(model_path), config, reply_fn=_dual_reply)
    worker = make_worker(config, server)
    assert "dupo_shuffled_agent" in _agent_loop_registry
    real, paid = [], []
    for i in range(rows):
        row = plus_row(i, a=10 + i, b=3, agent_name="dupo_shuffled_agent")
        with pytest.MonkeyPatch.context() as patch:  # only while the loop (and the worker's coin) is made
            if pid is not None:
                patch.setattr(os, "getpid", lambda: pid)
            loop = hydra.utils.instantiate(
                config=_agent_loop_registry["dupo_shuffled_agent"], trainer_config=DictConfigWrap(config=config),
                server_manager=server, tokenizer=worker.tokenizer, processor=None, hf_model_type=worker.hf_model_type,
                dataset_cls=RLHFDataset, data_config=DictConfigWrap(config.data), tools=ToolListWrap([]),
            )
        assert isinstance(loop, shuffled_agent.ShuffledDuPOAgentLoop)
        kwargs = {k: v for k, v in row.items() if k != "agent_name"}
        out = await loop.run({"temperature": 1.0, "top_p": 1.0, "logprobs": True}, priority=0, **kwargs)
        real.append(out.extra_fields["reward_extra_info"]["dupo_reward"])
        paid.append(out.reward_score)
    return real, paid


async def test_reward_is_a_rate_matched_coin(tiny_model_path, loops_yaml, monkeypatch):
    monkeypatch.setattr(shuffled_agent, "_COIN", None)
    real, paid = await _run_rows(tiny_model_path, loops_yaml)
    # the real DuPO reward is computed (dual really asked) and kept in the metrics
    assert real == [1.0 if i % 2 == 0 else 0.0 for i in range(40)]
    assert set(paid) <= {0.0, 1.0}
    assert shuffled_agent._COIN.observed == 40 and shuffled_agent._COIN.rate == 0.5
    # the reward paid is not the real one (a copy would agree 40/40; a coin about 20/40)
    agree = sum(p == r for p, r in zip(paid, real, strict=True))
    assert agree < 34


async def test_the_same_seed_pays_the_same_coins_in_another_run(tiny_model_path, loops_yaml, monkeypatch):
    """A rerun (new worker processes, so new pids) with the same seed pays the same coins; another seed not."""
    monkeypatch.setattr(shuffled_agent, "_COIN", None)
    monkeypatch.setenv("DUPO_DEMO_COIN_SEED", "11")
    _, first = await _run_rows(tiny_model_path, loops_yaml, pid=1001, rows=20)
    _, rerun = await _run_rows(tiny_model_path, loops_yaml, pid=2002, rows=20)
    assert rerun == first
    monkeypatch.setenv("DUPO_DEMO_COIN_SEED", "12")
    _, other_seed = await _run_rows(tiny_model_path, loops_yaml, pid=1001, rows=20)
    assert other_seed != first
