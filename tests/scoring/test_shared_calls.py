"""Identical likelihood questions in flight at once are asked once (`dupo_verl.shared_calls`).

The rollouts of a group that reach the same answer ask the dual the same question; in likelihood
mode its answer is one deterministic prefill. Sharing must change how many calls are made and
nothing else: every caller gets what it would have read itself, failures and timeouts stay each
caller's own, and nothing outlives its call (a self-dual's weights change between steps).
"""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scoring_fixtures import TASK, duals

from dupo_verl.scoring import Completion, DualOptions, score_response
from dupo_verl.shared_calls import in_flight, shared_call
from dupo_verl.tasks import get_task


async def _settle(rounds: int = 20) -> None:
    """Let every started task run up to its first real wait (no threads involved: deterministic)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def _all_asking(backend: GatedBackend, callers: int) -> None:
    """Wait until every caller is asking: awaiting a shared call, or inside an unshared one."""
    while max(in_flight()[1], len(backend.calls)) < callers:  # a shared call's asker waits before it calls
        await asyncio.sleep(0.001)


class GatedBackend:
    """A likelihood backend whose calls wait for `gate`; the log-probs depend on the question only."""

    def __init__(self, shared: bool = True, fail_first: int = 0) -> None:
        self.gate = asyncio.Event()
        self.calls: list[tuple[str, str]] = []
        self.fail_first = fail_first
        if shared:
            self.shared_scope = ("test", id(self))

    async def __call__(self, messages, *, n, temperature, top_p, max_tokens, session_id):
        """Sampled duals: the reply's score depends on the question only (a greedy dual)."""
        self.calls.append((messages[-1]["content"], f"n={n} t={temperature}"))
        await self.gate.wait()
        if len(self.calls) <= self.fail_first:
            raise RuntimeError("planted server error")
        return [Completion(repr(0.1 * (1 + len(messages[-1]["content"]) % 7)), 2) for _ in range(n)]

    async def value_logprobs(self, messages, reply, *, session_id):
        self.calls.append((messages[-1]["content"], reply.value))
        await self.gate.wait()
        if len(self.calls) <= self.fail_first:
            raise RuntimeError("planted server error")
        return [-0.1 * (1 + len(messages[-1]["content"]) % 7), -0.2]


def _score_all(backend: GatedBackend, answers: list[str], retries: int = 0, **options):
    async def main():
        options_ = DualOptions(**{"dual_mode": "likelihood", "max_retries": retries, **options})
        tasks = [asyncio.create_task(score_response(get_task(TASK), duals(1), a, backend, options_, f"s{i}"))
                 for i, a in enumerate(answers)]
        await asyncio.wait_for(_all_asking(backend, len(answers)), 20)
        backend.gate.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 20)
        assert in_flight() == (0, 0)  # nothing outlives its call
        return results

    return asyncio.run(main())


def _verdict(metrics: dict) -> dict:
    """The metrics without the task code's wall time, which no two runs share."""
    return {k: v for k, v in metrics.items() if k != "dupo_task_seconds"}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["5", "6", "12", "40"]), min_size=1, max_size=10))
def test_one_call_per_distinct_question_and_the_same_rewards_as_unshared(answers):
    shared, alone = GatedBackend(), GatedBackend(shared=False)
    with_sharing, without = _score_all(shared, answers), _score_all(alone, answers)
    assert len(shared.calls) == len(set(answers)) and len(alone.calls) == len(answers)
    assert sorted(set(shared.calls)) == sorted(set(alone.calls))
    for a, b in zip(with_sharing, without, strict=True):
        assert a.reward == b.reward and _verdict(a.metrics) == _verdict(b.metrics)
        assert math.isfinite(a.reward) and 0.0 <= a.reward <= 1.0


@pytest.mark.parametrize("k", [1, 3])
def test_greedy_dual_answers_are_shared_and_sampled_ones_never(k):
    answers = ["5", "5", "6", "5", "6"]
    greedy, alone = GatedBackend(), GatedBackend(shared=False)
    options = {"dual_mode": "sample", "dual_samples": k}
    shared = _score_all(greedy, answers, dual_temperature=0.0, **options)
    unshared = _score_all(alone, answers, dual_temperature=0.0, **options)
    assert len(greedy.calls) == 2 and len(alone.calls) == 5
    assert [(r.reward, _verdict(r.metrics)) for r in shared] == [(r.reward, _verdict(r.metrics)) for r in unshared]
    assert all(r.metrics["dupo_dual_samples"] == k for r in shared)
    sampled = GatedBackend()
    _score_all(sampled, answers, dual_temperature=0.6, **options)
    assert len(sampled.calls) == 5  # a group's sampled verdicts stay independent


def test_a_failed_shared_call_fails_every_caller_who_then_retries():
    backend = GatedBackend(fail_first=1)
    results = _score_all(backend, ["5", "5", "5"], retries=1)
    # one failed call shared by three, then one retry shared by three
    assert len(backend.calls) == 2
    assert all(r.metrics["dupo_dual_errors"] == 1.0 and r.reward > 0.0 for r in results)
    failing = GatedBackend(fail_first=10)
    results = _score_all(failing, ["5", "5"], retries=0)
    assert len(failing.calls) == 1
    assert all(r.reward == 0.0 and r.metrics["dupo_dual_errors"] == 1.0 for r in results)


def test_calls_that_do_not_overlap_are_not_shared():
    async def main():
        calls = []

        async def call():
            calls.append(1)
            return len(calls)

        first = await shared_call("k", call)
        second = await shared_call("k", call)
        return first, second, calls

    assert asyncio.run(main()) == (1, 2, [1, 1])


def test_a_timed_out_call_keeps_its_waiters_but_a_retry_asks_afresh():
    """A caller's timeout does not cancel the call for the others; its retry (which may be answered
    where the first call hangs) starts a new call rather than joining the old one."""
    async def main():
        first_gate, calls = asyncio.Event(), []

        async def call():
            calls.append(len(calls) + 1)
            number = len(calls)
            if number == 1:
                await first_gate.wait()  # the first call hangs until released
            return f"answer {number}"

        impatient = asyncio.create_task(asyncio.wait_for(shared_call("k", call), 0.01))
        patient = asyncio.create_task(shared_call("k", call))
        with pytest.raises(asyncio.TimeoutError):
            await impatient
        assert await asyncio.wait_for(shared_call("k", call), 5) == "answer 2"  # the retry
        assert not patient.done()
        first_gate.set()
        assert await patient == "answer 1"  # the waiter still had the first call's answer
        assert len(calls) == 2 and in_flight() == (0, 0)

    asyncio.run(main())


def test_different_keys_and_event_loops_never_share():
    async def both(tag):
        started = []

        async def call(name):
            started.append(name)
            await asyncio.sleep(0.001)
            return f"{tag}:{name}"

        return await asyncio.gather(shared_call("a", lambda: call("a")), shared_call("b", lambda: call("b"))), started

    assert asyncio.run(both("x")) == (["x:a", "x:b"], ["a", "b"])
    assert asyncio.run(both("y")) == (["y:a", "y:b"], ["a", "b"])
