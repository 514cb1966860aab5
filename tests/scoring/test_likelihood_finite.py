"""Likelihood duals never put a non-finite number into a metric (issue 15, robustness).

A backend may hand back NaN, +-inf or positive "log-probs" (a buggy server, an overflow, a masked
token): the scorer counts such a reply as a dual error, keeps every metric finite and the reward in
[0, 1]. Usable log-probs (finite, <= 0) give a similarity in [0, 1].
"""

from __future__ import annotations

import asyncio
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scoring_fixtures import TASK, duals

from dupo_verl.likelihood import ValueTokens, check_logprobs, from_verl_prompt_logprobs
from dupo_verl.scoring import METRIC_KEYS, DualOptions, likelihood_similarity, score_response
from dupo_verl.tasks import get_task

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
USABLE = st.floats(min_value=-1e6, max_value=0.0, allow_nan=False)


class LogprobBackend:
    """A dual backend whose `value_logprobs` returns the given list (whatever it holds)."""

    def __init__(self, logprobs: list[float]) -> None:
        self.logprobs = logprobs

    async def __call__(self, *args, **kwargs):  # sampled duals are not used in likelihood mode
        raise AssertionError("likelihood mode must not sample")

    async def value_logprobs(self, messages, reply, *, session_id):
        return list(self.logprobs)


def _score(logprobs: list[float]):
    options = DualOptions(dual_mode="likelihood", max_retries=0)
    coro = score_response(get_task(TASK), duals(2), "5", LogprobBackend(logprobs), options, "sess")
    return asyncio.run(asyncio.wait_for(coro, 20))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_FLOAT, min_size=1, max_size=6))
def test_every_metric_finite_and_bad_logprobs_counted(logprobs):
    result = _score(logprobs)
    assert set(result.metrics) == set(METRIC_KEYS)
    assert all(math.isfinite(v) for v in result.metrics.values()), result.metrics
    assert 0.0 <= result.reward <= 1.0
    usable = all(math.isfinite(v) and v <= 1e-4 for v in logprobs) and math.isfinite(sum(logprobs))
    if usable:
        assert result.metrics["dupo_dual_errors"] == 0.0
        assert 0.0 <= result.metrics["dupo_dual_acc"] <= 1.0
        assert result.metrics["dupo_dual_logprob"] <= 0.0
    else:
        assert result.metrics["dupo_dual_errors"] == 2.0, result.metrics  # one per question
        assert result.metrics["dupo_dual_logprob"] == 0.0


@given(st.lists(USABLE, min_size=1, max_size=12))
def test_similarity_of_usable_logprobs_is_in_unit_interval(logprobs):
    similarity, mean, total = likelihood_similarity(logprobs)
    assert 0.0 <= similarity <= 1.0
    assert math.isfinite(mean) and math.isfinite(total) and mean <= 0.0


@given(st.lists(USABLE, min_size=1, max_size=4), st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_logprob_is_rejected_by_every_reader(logprobs, bad):
    values = [*logprobs, bad]
    for call in (lambda: likelihood_similarity(values), lambda: check_logprobs(values, len(values), "test")):
        try:
            call()
        except ValueError as exc:
            assert "log-prob" in str(exc)
        else:
            raise AssertionError(f"{values} accepted")
    # verl's server format: one row per prompt token, the value in the last len(values) rows
    tokens = ValueTokens(ids=[7, 8, *range(100, 100 + len(values))], start=2)
    rows = [[v] for v in [-1.0, *values]] + [[0.0]]
    ids = [[t] for t in tokens.ids[1:]] + [[0]]
    try:
        from_verl_prompt_logprobs({"prompt_logprobs": rows, "prompt_ids": ids}, tokens)
    except ValueError:
        pass
    else:
        raise AssertionError("a non-finite server log-prob was accepted")
