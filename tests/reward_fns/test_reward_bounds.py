"""Issue 16, class 2: every time bound is checked at the door, and no input can leak a helper."""

from __future__ import annotations

import concurrent.futures
import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward_fns.math import answers_equal, check_time_bound, judge_answers, math_accuracy
from reward_fns.verify_pool import MAX_TIME_BOUND_S, Verdict, get_pool

HANG_GUARD_S = 600
BAD_BOUNDS = [math.inf, -math.inf, math.nan, 1e12, 601, 0, 0.0, -1, -1e-9, "2", "inf", None, True, [2],
              10**400, Decimal("nan"), complex(2, 0)]


@pytest.mark.parametrize("bound", BAD_BOUNDS, ids=repr)
def test_a_bad_bound_is_one_clear_value_error_naming_the_argument(bound):
    for call in (
        lambda: answers_equal("x^2", "x \\cdot x", bound),
        lambda: judge_answers("x^2", "x \\cdot x", timeout=bound),
        lambda: math_accuracy("\\boxed{x^2}", "x^2", timeout=bound),
        lambda: get_pool().verify("x^2", "x \\cdot x", bound),
    ):
        with pytest.raises(ValueError, match=r"^timeout must be a number of seconds in \(0, 600\], got "):
            call()
    with pytest.raises(ValueError, match="verify_timeout must be"):
        check_time_bound(bound, "verify_timeout")


@pytest.mark.parametrize("bound", [math.inf, math.nan, 1e12, -1, "2", 0])
def test_the_math_task_refuses_a_bad_timeout_parameter(bound):
    from dupo_verl.tasks import get_task

    with pytest.raises(ValueError, match="math task parameter timeout must be a number of seconds"):
        get_task("math", timeout=bound)


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.fractions()))
@settings(max_examples=300, deadline=None)
def test_check_time_bound_accepts_exactly_the_reals_in_range(value):
    inside = 0 < value <= MAX_TIME_BOUND_S  # False for nan
    if inside:
        assert check_time_bound(value) == float(value)
    else:
        with pytest.raises(ValueError, match="timeout must be"):
            check_time_bound(value)


def test_many_bad_calls_leak_no_helper_and_the_pool_still_judges():
    """Before the fix each inf/1e12 bound raised inside the pool with a helper taken, never returned:
    after a few such calls every symbolic check waited 20 s and said "not equal"."""
    pool = get_pool()
    assert judge_answers("\\sqrt{4}", "2") is Verdict.EQUAL  # the pool is up
    size, pids = pool.size(), pool.pids()

    def bad_call(i: int) -> str:
        bound = BAD_BOUNDS[i % len(BAD_BOUNDS)]
        try:
            answers_equal(f"x^{i % 7 + 2}", f"x \\cdot x^{i % 7 + 1}", bound)
        except ValueError:
            return "refused"
        return "accepted"

    with concurrent.futures.ThreadPoolExecutor(8) as threads:
        outcomes = list(threads.map(bad_call, range(200), timeout=HANG_GUARD_S))
    assert outcomes == ["refused"] * 200
    assert (pool.size(), pool.pids()) == (size, pids)
    assert judge_answers("(x+1)^2", "x^2+2x+1", 1.0) is Verdict.EQUAL


_ANSWERS = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["\\frac{", "}}}{", "\\sqrt{-1}", "\ud800", "\x00", "$$", "\\boxed{", "x=", "1/0", "\\infty",
                     "(10^{7})! - (10^{7})! + 5", "\\begin{pmatrix}", "\\\\" * 30, "'\"", "{\"gold\": 1}\n1"]),
)


@given(_ANSWERS, _ANSWERS)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_answer_pair_leaks_a_helper_or_raises(pred, gold):
    pool = get_pool()
    verdict = judge_answers(pred, gold, 0.5)
    assert isinstance(verdict, Verdict)
    assert pool.size() <= pool.max_workers
    with pool._cond:  # every helper is back: none is checked out once the call returned
        assert len(pool._idle) == len(pool._all)


def test_a_failure_inside_a_helper_call_returns_no_verdict_and_replaces_the_helper(monkeypatch):
    from reward_fns import verify_pool

    pool = get_pool()
    judge_answers("\\sqrt{9}", "3")
    size = pool.size()

    def broken(self, gold, pred, timeout):
        raise OSError("pipe broke")

    monkeypatch.setattr(verify_pool._Helper, "ask", broken)
    assert judge_answers("\\sqrt{9}", "3") is Verdict.TIMEOUT  # no verdict, not "unequal"
    monkeypatch.undo()
    assert pool.size() == size
    assert judge_answers("\\sqrt{9}", "3") is Verdict.EQUAL


def test_fraction_decimal_and_integer_bounds_are_fine():
    assert answers_equal("\\sqrt{9}", "3", Fraction(3, 2)) is True
    assert answers_equal("\\sqrt{9}", "3", Decimal("1.5")) is True
    assert answers_equal("\\sqrt{9}", "3", 1) is True
