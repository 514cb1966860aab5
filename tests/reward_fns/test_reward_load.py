"""Issue 16, class 1: the same verdicts on a busy machine as on a quiet one; a timeout is no verdict.

Load comes from busy loops that saturate every CPU (bounded, killed after each test). No test
asserts a wall time; the waits below are hang guards.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import random
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward_fns import compute_score
from reward_fns.math import Verdict, answers_equal, judge_answers, math_accuracy, verify_tally
from reward_fns.verify_pool import VerifyPool, get_pool

_BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_reward_fns.py"
_spec = importlib.util.spec_from_file_location("bench_reward_fns", _BENCH)
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # dataclasses look their module up while the file runs
_spec.loader.exec_module(bench)

HANG_GUARD_S = 600
# The report: equal symbolic answers judged unequal from 8 threads on a busy 2-core machine.
EQUAL_SYMBOLIC = [
    ("x^2+2x+1", "(x+1)^2"),
    ("\\sqrt{2}", "1.41421356"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("\\pi", "3.14159265"),
    ("\\frac{\\sqrt{8}}{2}", "\\sqrt{2}"),
]
# math-verify computes (10^7)! here; interruptible by the helper's own CPU timer.
PATHOLOGICAL = ("(10^{7})! - (10^{7})! + 5", "5")


def test_equal_symbolic_answers_stay_equal_from_8_threads_on_saturated_cpus():
    pairs = EQUAL_SYMBOLIC * 8
    with bench.cpu_hogs(), concurrent.futures.ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(lambda p: judge_answers(*p), pairs, timeout=HANG_GUARD_S))
    assert verdicts == [Verdict.EQUAL] * len(pairs)


@pytest.fixture(scope="module")
def saturated_cpus():
    with bench.cpu_hogs() as hogs:
        yield hogs


@given(st.integers(min_value=0, max_value=2**32))
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_symbolic_pairs_get_their_constructed_verdict_from_8_threads_under_load(saturated_cpus, seed):
    pairs = bench._symbolic_pairs(random.Random(seed)) * 4  # right and wrong, each from 4 threads at once
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(lambda p: judge_answers(p[0], p[1]), pairs, timeout=HANG_GUARD_S))
    assert verdicts == [Verdict.EQUAL if truth else Verdict.UNEQUAL for _, _, truth, _ in pairs], pairs[:2]


def test_waiting_for_a_free_helper_is_not_part_of_the_time_bound():
    """One helper, busy for a whole 3 s bound; the 0.3 s checks queued behind it still get verdicts."""
    pool = VerifyPool(1)
    try:
        pool.warm_up()
        with concurrent.futures.ThreadPoolExecutor(4) as threads:
            stuck = threads.submit(pool.verify, PATHOLOGICAL[1], PATHOLOGICAL[0], 3.0)
            while pool.size() == 1 and pool._idle and not stuck.done():  # until the stuck check holds it
                time.sleep(0.01)
            queued = [threads.submit(pool.verify, gold, pred, 0.3) for pred, gold in EQUAL_SYMBOLIC[:3]]
            assert [f.result(timeout=HANG_GUARD_S) for f in queued] == [Verdict.EQUAL] * 3
            assert stuck.result(timeout=HANG_GUARD_S) is Verdict.TIMEOUT
        assert pool.size() == 1
    finally:
        pool.close()


def test_an_overrun_does_not_leave_the_pool_cold():
    """After a check overran, the next checks with a tight bound are judged, not timed out.

    Before the fix the overrunning helper was killed and its fresh replacement spent the next
    caller's bound importing and building math-verify's grammar, so that check overran too.
    """
    pool = VerifyPool(1)
    try:
        assert pool.verify(PATHOLOGICAL[1], PATHOLOGICAL[0], 0.5) is Verdict.TIMEOUT
        with bench.cpu_hogs():
            verdicts = [pool.verify(gold, pred, 0.5) for pred, gold in EQUAL_SYMBOLIC]
        assert verdicts == [Verdict.EQUAL] * len(EQUAL_SYMBOLIC)
        assert pool.stats["timeouts"] == 1
    finally:
        pool.close()


def test_a_check_stuck_in_one_c_call_is_killed_and_replaced_by_a_warm_helper():
    pool = VerifyPool(1)
    try:
        before = pool.pids()
        # a power sympy evaluates in one long C call, which the helper's own timer cannot interrupt
        assert pool.verify("5", "9^{9^{9}} - 9^{9^{9}} + 5", 0.5) is Verdict.TIMEOUT
        assert pool.size() == 1 and pool.pids() != before
        assert pool.verify("(x+1)^2", "x^2+2x+1", 0.5) is Verdict.EQUAL
    finally:
        pool.close()


def test_a_timeout_is_a_distinct_outcome_counted_by_every_caller():
    with verify_tally() as tally:
        assert judge_answers(*PATHOLOGICAL, 0.5) is Verdict.TIMEOUT
        assert answers_equal(*PATHOLOGICAL, 0.5) is False  # a yes/no caller gets "no" ...
        assert math_accuracy(f"\\boxed{{{PATHOLOGICAL[0]}}}", "5", 0.5) == 0.0
        with verify_tally() as inner:
            assert judge_answers("x^2", "x \\cdot x") is Verdict.EQUAL
    assert tally.timeouts == 3 and inner.timeouts == 0  # ... and the tally still counts it
    out = compute_score("math", f"so \\boxed{{{PATHOLOGICAL[0]}}}", ["(x+1)^2", "5"])
    assert out["acc"] == 0.0 and out["verify_timeouts"] == 1.0  # the symbolic gold timed out
    assert compute_score("math", "so \\boxed{(x+1)^2}", "x^2+2x+1")["verify_timeouts"] == 0.0


def test_the_scorer_counts_verify_timeouts_and_scores_them_zero():
    import asyncio

    from dupo_verl.scoring import METRIC_KEYS, Completion, DualOptions, score_response
    from dupo_verl.tasks import DualQuestion, get_task

    assert "dupo_verify_timeouts" in METRIC_KEYS
    task = get_task("math", timeout=0.5)
    dual = DualQuestion(masked_text="Vqz apples.", variable="Vqz", value="5")

    async def reply(messages, *, n, **_):
        return [Completion(f"\\boxed{{{PATHOLOGICAL[0]}}}", 5), Completion("\\boxed{5}", 2)][:n]

    options = DualOptions(dual_questions_per_rollout=1, dual_samples=2)
    out = asyncio.run(score_response(task, [dual], "\\boxed{A}", reply, options, "s", ground_truth="x^2"))
    assert out.metrics["dupo_verify_timeouts"] == 1.0
    assert out.metrics["dupo_dual_acc"] == 0.5  # the timed-out sample scores 0, the other 1


def _helper_children() -> set[int]:
    """Live child processes of this process that run a math-verify helper."""
    found = set()
    for task in Path(f"/proc/{__import__('os').getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"reward_fns.verify_worker" in cmdline:
                found.add(int(pid))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="child processes are read from /proc")
def test_soak_scorer_and_compute_score_under_saturated_cpus_match_a_quiet_run():
    """2000 mixed pairs: quiet single-threaded verdicts == the DuPO scorer's and compute_score's from
    16 threads each while busy loops saturate every CPU; no helper is left behind."""
    pairs = bench.soak_pairs(2000, seed=16)
    assert sum(p.kind in bench._SYMBOLIC_KINDS for p in pairs) >= 150
    result = bench.soak(pairs)
    wrong = [(p, v) for p, v in zip(pairs, result.quiet, strict=True) if (v is Verdict.EQUAL) != p.truth]
    assert not wrong, wrong[:10]  # the quiet reference is itself right by construction
    assert [i for i, q in enumerate(result.quiet) if q is Verdict.TIMEOUT] == []
    assert result.differing() == [], [(pairs[i], result.scorer[i], result.compute_score[i])
                                      for i in result.differing()[:10]]
    pool = get_pool()
    assert _helper_children() == set(pool.pids()) and pool.size() <= pool.max_workers
    pool.close()
    assert _helper_children() == set()
