"""A task's own code (the user's hooks) is bounded: a hook that hangs gives no verdict and is counted
in `dupo_task_timeouts`, never a stalled step or a score; every hook's time shows in `dupo_task_seconds`.

Hooks here block on an event the test releases at the end, so "the scorer returned while the hook was
still blocked" proves the bound without asserting any wall time.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from scoring_fixtures import EchoTask, ScriptedGenerate, duals, scores_reply

from dupo_verl import task_calls
from dupo_verl.offline.dual_eval import dual_table
from dupo_verl.scoring import METRIC_KEYS, DualOptions, anchored_reward, score_response
from dupo_verl.task_calls import TaskCodeTimeout, run_task_code, task_code_tally

BOUND = DualOptions(task_timeout_s=0.2, dual_temperature=0.0)


class HangingTask(EchoTask):
    """EchoTask whose hook named `hang` blocks until `release` is set."""

    name = "scoring_test_hanging"

    def __init__(self, hang: str) -> None:
        super().__init__()
        self.hang = hang
        self.release = threading.Event()
        self.entered = 0

    def _maybe_hang(self, hook: str) -> None:
        if hook == self.hang:
            self.entered += 1
            self.release.wait(30)

    def extract_primal_answer(self, response):
        self._maybe_hang("extract_primal_answer")
        return super().extract_primal_answer(response)

    def dual_messages(self, dual, primal_answer):
        self._maybe_hang("dual_messages")
        return super().dual_messages(dual, primal_answer)

    def score_reconstruction(self, dual, dual_response):
        self._maybe_hang("score_reconstruction")
        return super().score_reconstruction(dual, dual_response)

    def leaks(self, dual, primal_answer):
        self._maybe_hang("leaks")
        return super().leaks(dual, primal_answer)

    def gold_score(self, response, ground_truth):
        self._maybe_hang("gold_score")
        return super().gold_score(response, ground_truth)


def _score(task: HangingTask, options: DualOptions = BOUND, ground_truth: str | None = "5"):
    generate = ScriptedGenerate(scores_reply(0.75))
    try:
        return asyncio.run(score_response(task, duals(2), "5", generate, options, "s", ground_truth))
    finally:
        assert not task.release.is_set()  # the scorer returned while the hook was still blocked
        task.release.set()


@pytest.mark.parametrize("hook", ["extract_primal_answer", "leaks"])
def test_a_hanging_answer_check_gives_the_no_answer_reward_and_is_counted(hook):
    task = HangingTask(hook)
    result = _score(task, DualOptions(task_timeout_s=0.2, no_answer_reward=0.0), ground_truth=None)
    assert task.entered == 1
    assert result.reward == 0.0 and result.metrics["dupo_task_timeouts"] == 1.0
    assert result.metrics["dupo_dual_questions"] == 0.0  # no dual was asked on an answer never checked
    assert set(result.metrics) == set(METRIC_KEYS)


@pytest.mark.parametrize("hook", ["dual_messages", "score_reconstruction"])
def test_a_hanging_dual_hook_fails_its_question_and_is_counted(hook):
    task = HangingTask(hook)
    result = _score(task, ground_truth=None)
    assert result.metrics["dupo_task_timeouts"] == 2.0  # both questions
    assert result.metrics["dupo_dual_errors"] == 2.0 and result.metrics["dupo_dual_samples"] == 0.0
    assert result.reward == 0.0  # a failed question scores 0, as a failed dual call does


def test_a_hanging_gold_check_leaves_the_sample_unlabelled_and_keeps_its_dual_reward():
    task = HangingTask("gold_score")
    result = _score(task)
    assert result.metrics["dupo_task_timeouts"] == 1.0
    assert result.metrics["dupo_has_gold"] == 0.0
    assert result.reward == pytest.approx(0.75)  # the dual verdict is untouched


def test_task_code_time_is_reported_and_no_timeout_under_the_bound():
    class Slow(EchoTask):
        def score_reconstruction(self, dual, dual_response):
            time.sleep(0.05)
            return super().score_reconstruction(dual, dual_response)

    generate = ScriptedGenerate(scores_reply(0.5))
    result = asyncio.run(score_response(Slow(), duals(2), "5", generate, DualOptions(task_timeout_s=5.0), "s"))
    assert result.reward == pytest.approx(0.5)
    assert result.metrics["dupo_task_timeouts"] == 0.0
    assert result.metrics["dupo_task_seconds"] >= 0.1  # two questions, 0.05 s each at least


def test_anchored_reward_adds_both_judges_task_code():
    live = {**dict.fromkeys(METRIC_KEYS, 0.0), "dupo_dual_acc": 1.0, "dupo_dual_questions": 1.0,
            "dupo_task_timeouts": 1.0, "dupo_task_seconds": 0.5}
    frozen = asyncio.run(score_response(EchoTask(), duals(1), "5", ScriptedGenerate(scores_reply(1.0)), BOUND, "s"))
    combined = anchored_reward(live, frozen, BOUND)
    assert combined.metrics["dupo_task_timeouts"] == 1.0 + frozen.metrics["dupo_task_timeouts"]
    assert combined.metrics["dupo_task_seconds"] == pytest.approx(0.5 + frozen.metrics["dupo_task_seconds"])


def test_waiting_for_a_free_slot_is_not_the_tasks_time(monkeypatch):
    monkeypatch.setattr(task_calls, "MAX_CONCURRENT_CALLS", 1)

    async def main():
        with task_code_tally() as tally:
            # sequential through one slot, the second call waits 0.6 s before it starts: only its own
            # 0.6 s counts against its 1 s bound
            out = await asyncio.gather(*(run_task_code("t_slot", "hook", lambda: time.sleep(0.6) or 1, 1.0)
                                         for _ in range(2)))
        return out, tally

    out, tally = asyncio.run(main())
    assert out == [1, 1] and tally.timeouts == 0 and tally.seconds >= 1.2


def test_exceptions_of_task_code_reach_the_caller_and_its_results_come_back():
    async def main():
        assert await run_task_code("t_exc", "hook", lambda: 7, 5.0) == 7
        with pytest.raises(ZeroDivisionError):
            await run_task_code("t_exc", "hook", lambda: 1 / 0, 5.0)

    asyncio.run(main())


def test_a_task_that_hangs_on_every_call_does_not_leak_a_thread_per_sample(monkeypatch):
    monkeypatch.setattr(task_calls, "MAX_ABANDONED_CALLS", 2)
    release = threading.Event()

    async def main():
        with task_code_tally() as tally:
            for _ in range(5):
                with pytest.raises(TaskCodeTimeout):
                    await run_task_code("t_stuck", "hook", lambda: release.wait(30), 0.05)
        return tally

    before = threading.active_count()
    tally = asyncio.run(main())
    assert tally.timeouts == 5
    assert threading.active_count() - before <= 2  # only the first two calls started a thread
    release.set()

    async def again():
        deadline = time.monotonic() + 30
        while task_calls._ABANDONED.get("t_stuck", 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return await run_task_code("t_stuck", "hook", lambda: "back", 1.0)

    assert asyncio.run(again()) == "back"  # once its stuck calls end, the task is called again


def test_a_hanging_leak_check_fails_its_cell_in_the_offline_table():
    task = HangingTask("leaks")
    try:
        table = asyncio.run(dual_table(task, duals(1), ["5"], ScriptedGenerate(scores_reply(1.0)), BOUND, "p"))
    finally:
        task.release.set()
    assert table[0][0].failed and not table[0][0].leaked and table[0][0].accuracy is None


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "10", True, 100_000])
def test_a_bad_task_timeout_is_one_line_naming_it(bad):
    with pytest.raises(ValueError, match="task_timeout_s"):
        DualOptions(task_timeout_s=bad)


def test_many_samples_at_once_with_a_hanging_hook_stop_at_the_cap_and_none_waits_long(monkeypatch):
    """500 rollouts scored together: the cap is checked again after the slot, so no more than the cap
    of threads is ever left behind, and the queue does not stretch a sample to many bounds."""
    monkeypatch.setattr(task_calls, "MAX_ABANDONED_CALLS", 32)
    task = HangingTask("score_reconstruction")
    task.name = "scoring_test_hanging_many"
    options = DualOptions(task_timeout_s=0.2)

    async def main():
        return await asyncio.gather(*(score_response(task, duals(1), "5", ScriptedGenerate(scores_reply(0.75)),
                                                     options, f"s{i}") for i in range(500)))

    try:
        results = asyncio.run(main())
        # the cap, plus the calls already in flight when it was reached
        assert task_calls._ABANDONED[task.name] <= 32 + task_calls.MAX_CONCURRENT_CALLS
        assert task.entered <= 32 + task_calls.MAX_CONCURRENT_CALLS
    finally:
        task.release.set()
    assert all(r.metrics["dupo_task_timeouts"] == 1.0 and r.reward == 0.0 for r in results)


def test_calls_whose_caller_gave_up_do_not_block_a_healthy_task():
    task = HangingTask("score_reconstruction")
    task.name = "scoring_test_hanging_cancelled"

    async def main():
        for i in range(20):
            try:
                await asyncio.wait_for(score_response(task, duals(1), "5", ScriptedGenerate(scores_reply(0.75)),
                                                      DualOptions(task_timeout_s=5.0), f"c{i}"), 0.05)
            except asyncio.TimeoutError:
                pass
        return await score_response(EchoTask(), duals(2), "5", ScriptedGenerate(scores_reply(0.75)),
                                    DualOptions(task_timeout_s=5.0), "n", "5")

    try:
        result = asyncio.run(main())
    finally:
        task.release.set()
    assert result.reward == pytest.approx(0.75)
    assert result.metrics["dupo_task_timeouts"] == 0.0 and result.metrics["dupo_has_gold"] == 1.0


@pytest.mark.parametrize("raised", [StopIteration, KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError])
@pytest.mark.parametrize("hook", ["extract_primal_answer", "score_reconstruction", "gold_score", "dual_messages"])
def test_any_exception_a_hook_raises_is_that_calls_failure_at_once_not_a_timeout(hook, raised):
    class Raising(EchoTask):
        name = "scoring_test_raising"

    def broken(*args, **kwargs):
        raise raised()

    task = Raising()
    setattr(task, hook, broken)
    result = asyncio.run(score_response(task, duals(1), "5", ScriptedGenerate(scores_reply(0.75)),
                                        DualOptions(task_timeout_s=60.0), "s", "5"))
    assert result.metrics["dupo_task_timeouts"] == 0.0
    assert result.metrics["dupo_task_seconds"] < 60.0  # failed at once, not at the bound
    if hook == "gold_score":
        assert result.metrics["dupo_has_gold"] == 0.0 and result.reward == pytest.approx(0.75)
    elif hook == "extract_primal_answer":
        assert result.reward == 0.0 and result.metrics["dupo_dual_questions"] == 0.0
        assert result.metrics["dupo_dual_errors"] == 1.0
    else:
        assert result.reward == 0.0 and result.metrics["dupo_dual_errors"] >= 1.0


def test_a_hook_stuck_forever_does_not_keep_the_process_from_exiting(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "stuck.py"
    script.write_text(
        "import asyncio, sys, time\n"
        f"sys.path[:0] = [{str(Path(__file__).parent)!r}]\n"
        "from scoring_fixtures import EchoTask, ScriptedGenerate, duals, scores_reply\n"
        "from dupo_verl.scoring import DualOptions, score_response\n"
        "class Forever(EchoTask):\n"
        "    def score_reconstruction(self, dual, text):\n"
        "        while True:\n"
        "            time.sleep(0.5)\n"
        "r = asyncio.run(score_response(Forever(), duals(1), '5', ScriptedGenerate(scores_reply(1.0)),\n"
        "                               DualOptions(task_timeout_s=0.2), 's'))\n"
        "print(r.metrics['dupo_task_timeouts'])\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "1.0"


def test_anchored_reward_keeps_both_judges_task_code_when_no_question_was_asked():
    task = HangingTask("extract_primal_answer")
    live = _score(task, ground_truth=None)
    frozen_task = HangingTask("extract_primal_answer")
    frozen = _score(frozen_task, ground_truth=None)
    combined = anchored_reward(live.metrics, frozen, BOUND)
    assert combined.metrics["dupo_task_timeouts"] == 2.0


@pytest.mark.parametrize("raised", [SystemExit, StopIteration])
def test_a_leak_check_that_raises_past_its_guard_fails_its_cell_in_the_offline_table(raised):
    class Raising(EchoTask):
        name = "scoring_test_raising_leaks"

        def leaks(self, dual, primal_answer):
            raise raised()

    table = asyncio.run(dual_table(Raising(), duals(1), ["5"], ScriptedGenerate(scores_reply(1.0)), BOUND, "p"))
    # StopIteration is an Exception: `leaks_safely` counts it as a leak; SystemExit gets past it
    cell = table[0][0]
    assert cell.accuracy is None and (cell.leaked if raised is StopIteration else cell.failed)
