"""The scorer's own guarantees: bounded time, counted short replies, no raise on malformed input.

Issue 16 class 6 and issue 17 section 4: a dual server that never answers, a reply with fewer samples
than asked, malformed completions, a task whose `dual_messages` raises, and task code
(`gold_score`, `leaks`) that must not run on the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scoring_fixtures import TASK, EchoTask, ScriptedGenerate, duals, scores_reply

from dupo_verl.scoring import METRIC_KEYS, Completion, DualOptions, judge_answer, score_response, shape
from dupo_verl.tasks import get_task, register_task
from reward_fns.shaping import exp_shaping

# No test here may hang: a hang before the fix must show up as a failure.
GUARD_S = 20


async def _score(generate, options, answer="5", n_duals=1, task=None, gold=None):
    task = task or get_task(TASK)
    return await asyncio.wait_for(
        score_response(task, duals(n_duals), answer, generate, options, "sess", gold), GUARD_S
    )


async def test_server_that_never_answers_is_bounded_counted_and_retried():
    never = asyncio.Event()

    async def hang(messages, *, n, temperature, top_p, max_tokens, session_id):
        calls.append(session_id)
        await never.wait()

    calls: list[str] = []
    options = DualOptions(dual_timeout_s=0.05, max_retries=2, dual_samples=3)
    result = await _score(hang, options)
    assert len(calls) == 3  # one try and two retries
    m = result.metrics
    assert m["dupo_dual_errors"] == 3.0 and m["dupo_dual_timeouts"] == 3.0
    assert m["dupo_dual_questions"] == 1.0 and m["dupo_dual_samples"] == 0.0 and m["dupo_dual_missing"] == 3.0
    assert result.reward == 0.0


async def test_timeout_then_answer_scores_the_answer():
    never = asyncio.Event()
    seen: list[int] = []

    async def slow_first(messages, *, n, temperature, top_p, max_tokens, session_id):
        seen.append(len(seen))
        if len(seen) == 1:
            await never.wait()
        return [Completion("1.0", 2)] * n

    result = await _score(slow_first, DualOptions(dual_timeout_s=0.05, max_retries=1, dual_samples=2))
    assert result.reward == 1.0
    assert result.metrics["dupo_dual_errors"] == 1.0 and result.metrics["dupo_dual_timeouts"] == 1.0
    assert result.metrics["dupo_dual_samples"] == 2.0 and result.metrics["dupo_dual_missing"] == 0.0


async def test_short_reply_is_counted_and_samples_report_what_was_scored():
    generate = ScriptedGenerate(scores_reply(1.0, 0.5))  # asked for 4, two come back
    result = await _score(generate, DualOptions(dual_samples=4))
    m = result.metrics
    assert m["dupo_dual_samples"] == 2.0 and m["dupo_dual_missing"] == 2.0
    assert m["dupo_dual_errors"] == 0.0
    assert m["dupo_dual_acc"] == pytest.approx(0.75)  # the mean of what was scored
    assert m["dupo_dual_tokens"] == 6.0


async def test_empty_reply_scores_zero_and_counts_every_sample_missing():
    result = await _score(ScriptedGenerate(scores_reply()), DualOptions(dual_samples=3))
    m = result.metrics
    assert m["dupo_dual_samples"] == 0.0 and m["dupo_dual_missing"] == 3.0
    assert result.reward == 0.0 and m["dupo_dual_acc"] == 0.0


async def test_longer_reply_scores_only_the_samples_asked():
    result = await _score(ScriptedGenerate(scores_reply(1, 1, 0, 0)), DualOptions(dual_samples=2))
    assert result.metrics["dupo_dual_samples"] == 2.0 and result.reward == 1.0
    assert result.metrics["dupo_dual_missing"] == 0.0


MALFORMED = [
    None,
    {"text": "1.0", "num_tokens": 2},
    Completion(None, 2),  # type: ignore[arg-type]
    Completion(b"1.0", 2),  # type: ignore[arg-type]
    Completion(1.0, 2),  # type: ignore[arg-type]
    "1.0",
    7,
]


@pytest.mark.parametrize("bad", MALFORMED, ids=repr)
async def test_malformed_completion_is_missing_not_raised(bad):
    generate = ScriptedGenerate(lambda messages, n, attempt: [Completion("1.0", 2), bad])
    result = await _score(generate, DualOptions(dual_samples=2))
    m = result.metrics
    assert m["dupo_dual_samples"] == 1.0 and m["dupo_dual_missing"] == 1.0
    # tokens are what the dual generated (its cost), counted whenever the count itself is valid
    assert result.reward == 1.0 and m["dupo_dual_tokens"] == (4.0 if isinstance(bad, Completion) else 2.0)


@pytest.mark.parametrize(
    "tokens", [None, -3, 2.5, "7", True, float("nan"), float("inf"), 10**400, 10**7], ids=lambda t: repr(t)[:12]
)
async def test_bad_token_counts_count_zero(tokens):
    """An untrusted count (10**400 would overflow the float metric) is unknown, and the verdict is kept."""
    generate = ScriptedGenerate(lambda messages, n, attempt: [Completion("0.5", tokens)])  # type: ignore[arg-type]
    result = await _score(generate, DualOptions(dual_samples=1))
    assert result.metrics["dupo_dual_tokens"] == 0.0 and result.metrics["dupo_dual_acc"] == 0.5


async def test_retries_of_a_server_that_fails_at_once_yield_and_can_be_cancelled():
    """A backend that raises at once must not hold the event loop, nor outlive its caller: other
    rollouts run between attempts, and a cancellation (the caller's own timeout) ends the retries.
    Python 3.11's `wait_for` dropped that cancellation every time: all 101 attempts still ran."""
    calls = 0

    async def down(messages, *, n, temperature, top_p, max_tokens, session_id):
        nonlocal calls
        calls += 1
        raise ConnectionError("server down")

    def scoring() -> asyncio.Task:
        return asyncio.ensure_future(score_response(get_task(TASK), duals(1), "5", down, options, "s"))

    options = DualOptions(max_retries=100)
    seen: list[int] = []  # attempts made each time this task got to run
    task = scoring()
    while not task.done():
        seen.append(calls)
        await asyncio.sleep(0)
    assert calls == 101 and task.result().metrics["dupo_dual_errors"] == 101.0
    assert any(0 < c < 101 for c in seen)

    calls = 0
    task = scoring()
    while calls < 5:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, GUARD_S)
    assert calls < 10


@pytest.mark.parametrize("reply", [None, "1.0", {"choices": []}, 5, Completion("1.0", 1)], ids=repr)
async def test_reply_that_is_not_a_list_is_a_counted_error(reply):
    generate = ScriptedGenerate(
        lambda messages, n, attempt: reply if attempt == 0 else [Completion("1.0", 1)]
    )
    result = await _score(generate, DualOptions(max_retries=1))
    assert result.metrics["dupo_dual_errors"] == 1.0 and result.reward == 1.0
    assert len(generate.calls) == 2


_ITEMS = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(
        Completion,
        text=st.one_of(st.none(), st.text(max_size=6), st.floats(), st.integers(), st.just("0.5")),
        num_tokens=st.one_of(
            st.none(), st.integers(-5, 10**9), st.floats(), st.text(max_size=2), st.booleans()
        ),
    ),
)
_REPLIES = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.lists(_ITEMS, max_size=6),
    st.tuples(_ITEMS, _ITEMS),
    st.sampled_from([RuntimeError("boom"), ValueError("bad"), TimeoutError()]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replies=st.lists(_REPLIES, min_size=3, max_size=3), k=st.integers(1, 4), retries=st.integers(0, 2))
async def test_any_reply_never_raises_and_keeps_the_metric_contract(replies, k, retries):
    generate = ScriptedGenerate(lambda messages, n, attempt: replies[attempt])
    options = DualOptions(dual_samples=k, max_retries=retries, dual_questions_per_rollout=1)
    result = await _score(generate, options)
    m = result.metrics
    assert tuple(m) == METRIC_KEYS
    assert all(type(v) is float and math.isfinite(v) for v in m.values())
    assert 0.0 <= result.reward <= 1.0
    assert m["dupo_dual_samples"] + m["dupo_dual_missing"] == k  # one question of K samples
    assert m["dupo_dual_errors"] <= retries + 1 and m["dupo_dual_timeouts"] <= m["dupo_dual_errors"]


@register_task("scoring_test_bad_dual_messages")
class BadDualMessages(EchoTask):
    """A task whose dual prompt cannot be built for the answer "bad" (one bad row)."""

    def dual_messages(self, dual, primal_answer):
        if primal_answer == "bad":
            raise KeyError("source")
        return super().dual_messages(dual, primal_answer)


async def test_dual_messages_failure_is_a_failed_judgement_not_a_raise():
    task = BadDualMessages()
    generate = ScriptedGenerate(scores_reply(1.0))
    options = DualOptions(dual_samples=2, max_retries=3)
    judgement = await judge_answer(task, duals(1)[0], "bad", generate, options, "s")
    assert judgement.failed and judgement.errors == 1 and judgement.scores == [] and judgement.missing == 2
    assert generate.calls == []  # a prompt that cannot be built is not retried
    result = await _score(generate, options, answer="bad", task=task)
    assert result.metrics["dupo_dual_errors"] == 1.0 and result.reward == 0.0
    good = await judge_answer(task, duals(1)[0], "fine", generate, options, "s2")
    assert not good.failed and good.accuracy == 1.0


def test_dual_messages_failure_does_not_stop_an_offline_run():
    """`filter` through `run_in_order`: the bad answer's cells fail, the run and the other rows go on."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "offline"))
    from offline_fixtures import ArithTask, ScriptedBackend, arith_row

    from dupo_verl.generation import MicroBatcher
    from dupo_verl.offline.filter import FilterSettings, filter_row, jobs_from_rows
    from dupo_verl.offline.primal import PrimalSampling
    from dupo_verl.offline.runner import run_in_order

    @register_task("scoring_test_bad_arith")
    class BadArith(ArithTask):
        def dual_messages(self, dual, primal_answer):
            if primal_answer == "9":
                raise KeyError("source")
            return super().dual_messages(dual, primal_answer)

    def row(a, b, ident):
        r = arith_row(a, b, ident)
        r["extra_info"]["dupo"]["task"] = "scoring_test_bad_arith"
        return r

    backend = ScriptedBackend(
        {
            "What is 2 + 3?": ["ANSWER: 5", "ANSWER: 9"],
            "What is 4 + 5?": ["ANSWER: 9", "ANSWER: 9"],
            "What is 1 + 1?": ["ANSWER: 2", "ANSWER: 2"],
        }
    )
    settings_ = FilterSettings(
        sampling=PrimalSampling(n=2, temperature=1.0, max_tokens=16), dual=DualOptions(max_retries=0)
    )
    records: list[dict] = []

    async def go():
        async with MicroBatcher(backend, seed=0) as generate:
            jobs = jobs_from_rows([row(2, 3, "p0"), row(4, 5, "p1"), row(1, 1, "p2")])
            return await run_in_order(jobs, lambda job: filter_row(job, generate, settings_), records.append)

    assert asyncio.run(go()) == 3
    # a problem with a question that got no verdict (answer 9's prompt fails) is failed, counted and
    # redone by --resume, never dropped as unanswerable; the run and the other rows go on
    assert [r["status"] for r in records] == ["failed", "failed", "ok"]
    assert all("no verdict" in r["error"] for r in records[:2])
    assert [q["rule"] for q in records[2]["questions"]] == ["kept", "kept"]
    assert all("9" not in r.messages[-1]["content"] for r in backend.dual_requests())


# ------------------------------------------------------------ the event loop is never blocked


@register_task("scoring_test_blocking")
class BlockingTask(EchoTask):
    """`gold_score` and `leaks` block their thread until a coroutine on the loop releases them.

    Run on the event loop, they would wait out their bound (the coroutine cannot run) and say so.
    """

    released = threading.Event()
    seen: dict[str, bool] = {}

    def leaks(self, dual, primal_answer):
        BlockingTask.seen["leaks_released"] = BlockingTask.released.wait(timeout=5)
        BlockingTask.seen["leaks_off_loop"] = threading.current_thread() is not threading.main_thread()
        return False

    def gold_score(self, response, ground_truth):
        BlockingTask.seen["gold_released"] = BlockingTask.released.wait(timeout=5)
        BlockingTask.seen["gold_off_loop"] = threading.current_thread() is not threading.main_thread()
        return 1.0


async def test_gold_score_and_leaks_run_off_the_event_loop():
    BlockingTask.released.clear()
    BlockingTask.seen.clear()

    async def release_soon():
        await asyncio.sleep(0.01)
        BlockingTask.released.set()

    releaser = asyncio.create_task(release_soon())
    result = await _score(ScriptedGenerate(scores_reply(1.0)), DualOptions(), task=BlockingTask(), gold="5")
    await releaser
    assert BlockingTask.seen == {
        "leaks_released": True,
        "leaks_off_loop": True,
        "gold_released": True,
        "gold_off_loop": True,
    }
    assert result.metrics["dupo_gold_acc"] == 1.0 and result.reward == 1.0


@register_task("scoring_test_bad_gold")
class BadGold(EchoTask):
    def gold_score(self, response, ground_truth):
        return {"nan": float("nan"), "big": 7.0, "neg": -1.0, "str": "x", "raise": None}[ground_truth]


@pytest.mark.parametrize(
    ("gold", "has_gold", "gold_acc"),
    [("nan", 0.0, 0.0), ("big", 1.0, 1.0), ("neg", 1.0, 0.0), ("str", 0.0, 0.0)],
)
async def test_bad_gold_scores_never_reach_the_reward(gold, has_gold, gold_acc):
    options = DualOptions(hybrid_weight=0.5)
    result = await _score(ScriptedGenerate(scores_reply(0.5)), options, task=BadGold(), gold=gold)
    assert 0.0 <= result.reward <= 1.0 and math.isfinite(result.reward)
    assert result.metrics["dupo_has_gold"] == has_gold and result.metrics["dupo_gold_acc"] == gold_acc


# ------------------------------------------------------------ one exp shaping


@settings(max_examples=200, deadline=None)
@given(similarity=st.floats(0, 1), lam=st.one_of(st.none(), st.floats(0, 1e6, exclude_min=True)))
def test_shape_is_reward_fns_exp_shaping(similarity, lam):
    options = DualOptions(shaping_lambda=lam)
    shaped = shape(similarity, options)
    expected = similarity if lam is None else exp_shaping(1.0 - similarity, lam)
    assert shaped == expected and 0.0 <= shaped <= 1.0


def test_shape_has_no_exp_of_its_own():
    code = inspect.getsource(shape).split('"""')[2]  # the body, without the docstring
    assert "exp(" not in code.replace("exp_shaping(", "") and "exp_shaping(" in code
