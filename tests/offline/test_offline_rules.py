"""Filter and rerank rules on scripted candidate pools, against hand-checked outcomes.

Problem "What is 2 + 3?" has two dual questions: hide 2 ("What is Va + 3?") and hide 3 ("What is
2 + Vb?"). The scripted dual solves them exactly, so answer 5 recovers both hidden numbers and any
other answer recovers neither, unless a test scripts the dual replies differently.
"""

from __future__ import annotations

import asyncio

from offline_fixtures import ArithTask, ScriptedBackend, arith_row

from dupo_verl.generation import MicroBatcher
from dupo_verl.offline.answers import group_answers
from dupo_verl.offline.dual_eval import Cell
from dupo_verl.offline.filter import FilterSettings, filter_report, filter_row, jobs_from_rows, question_rule
from dupo_verl.offline.primal import PrimalSampling
from dupo_verl.offline.report import summarize
from dupo_verl.offline.rerank import (
    RerankInput,
    RerankSettings,
    build_jobs,
    majority_group,
    rerank_row,
    select_candidate,
)
from dupo_verl.scoring import DualOptions

Q = "What is 2 + 3?"


def ans(*values: object) -> list[str]:
    return [f"Let me add. ANSWER: {v}" if v is not None else "I am not sure." for v in values]


async def _filter(rows, backend, **settings_kw):
    settings = FilterSettings(
        sampling=PrimalSampling(n=settings_kw.pop("n", 4), temperature=1.0, max_tokens=16),
        dual=DualOptions(dual_samples=settings_kw.pop("k", 1), max_retries=0),
        **settings_kw,
    )
    async with MicroBatcher(backend, seed=0) as generate:
        return await asyncio.gather(*(filter_row(job, generate, settings) for job in jobs_from_rows(rows)))


async def _rerank(rows, backend, share=True, k=1, n=4, **input_kw):
    settings = RerankSettings(
        sampling=PrimalSampling(n=n, temperature=0.8, max_tokens=16),
        dual=DualOptions(dual_samples=k, max_retries=0),
        share_answers=share,
    )
    jobs = build_jobs(rows, RerankInput(**input_kw))
    async with MicroBatcher(backend, seed=0) as generate:
        return await asyncio.gather(*(rerank_row(job, generate, settings) for job in jobs))


# ---------------------------------------------------------------- pure rules


def test_question_rule_counts_recovering_answers():
    assert question_rule([Cell(1.0), Cell(0.0), Cell(None, leaked=True)]) == ("kept", 1)
    assert question_rule([Cell(0.0), Cell(0.0)]) == ("unanswerable", 0)
    assert question_rule([Cell(1.0), Cell(0.5)]) == ("not_unique", 2)
    assert question_rule([Cell(1.0), Cell(0.5)], threshold=0.75) == ("kept", 1)
    assert question_rule([Cell(1.0), Cell(None, failed=True)]) == ("failed", 0)
    assert question_rule([]) == ("unanswerable", 0)  # no candidate gave an answer


def test_select_candidate_accuracy_then_votes_then_order():
    # highest accuracy wins even with fewer votes
    assert select_candidate([0.2, 0.9, 0.2], [2, 1, 2]) == 1
    # equal accuracy: more votes wins
    assert select_candidate([0.5, 0.5, 0.5], [1, 2, 2]) == 1
    # full tie: the earlier candidate
    assert select_candidate([0.0, 0.0], [1, 1]) == 0
    # an unjudged answer (None) ranks below a judged 0.0
    assert select_candidate([None, 0.0], [3, 1]) == 1
    # nobody judged: votes decide (majority vote)
    assert select_candidate([None, None, None], [1, 2, 2]) == 1
    # candidates without an answer (0 votes) are never chosen
    assert select_candidate([None, None], [0, 0]) is None


def test_group_answers_uses_the_task_equality_and_skips_missing():
    task = ArithTask()
    groups = group_answers(["5", None, "05", "7", "5"], task.answers_equal)
    assert [(g.answer, g.members) for g in groups] == [("5", [0, 2, 4]), ("7", [3])]
    assert majority_group(groups) == 0
    assert majority_group(group_answers(["7", "5"], task.answers_equal)) == 0  # tie -> first seen
    assert majority_group([]) is None


# ---------------------------------------------------------------- filter


def test_filter_keeps_questions_recovered_by_exactly_one_answer():
    backend = ScriptedBackend({Q: ans(5, 5, 7, None)})
    (record,) = asyncio.run(_filter([arith_row(2, 3, "p0")], backend))
    assert record["status"] == "ok"
    assert record["answers"] == ["5", "7"] and record["votes"] == [2, 1] and record["no_answer"] == 1
    assert [q["rule"] for q in record["questions"]] == ["kept", "kept"]
    assert [q["accuracy"] for q in record["questions"]] == [[1.0, 0.0], [1.0, 0.0]]
    assert record["kept"] == [0, 1]
    # one primal request for the pool, then 2 distinct answers x 2 questions, K=1
    assert record["generations"]["primal_samples"] == 4
    assert record["generations"]["dual_requests"] == 4 == len(backend.dual_requests())
    assert record["generations"]["dual_samples"] == 4


def test_filter_drops_not_unique_and_unanswerable_questions():
    # The dual always says "Va = 2" for the first question, whatever the answer: both answers
    # recover it (not unique). The second question is solved honestly; only 5 recovers 3.
    def dual(prompt, sample):
        return "Va = 2" if "Va" in prompt else None

    backend = ScriptedBackend({Q: ans(5, 7, 7, 7)}, dual=dual)
    (record,) = asyncio.run(_filter([arith_row(2, 3, "p0")], backend))
    assert [(q["rule"], q["recovering"]) for q in record["questions"]] == [("not_unique", 2), ("kept", 1)]
    assert record["kept"] == [1]

    # A pool that is wrong everywhere: nothing is recovered, the problem loses every question.
    backend = ScriptedBackend({Q: ans(9, 9, 9, 9)})
    (record,) = asyncio.run(_filter([arith_row(2, 3, "p0")], backend))
    assert [q["rule"] for q in record["questions"]] == ["unanswerable", "unanswerable"]
    assert record["kept"] == [] and record["answers"] == ["9"] and record["votes"] == [4]


def test_filter_with_no_answer_pool_makes_no_dual_call():
    backend = ScriptedBackend({Q: ans(None, None, None, None)})
    (record,) = asyncio.run(_filter([arith_row(2, 3, "p0")], backend))
    assert record["answers"] == [] and record["no_answer"] == 4
    assert [q["rule"] for q in record["questions"]] == ["unanswerable", "unanswerable"]
    assert backend.dual_requests() == []


def test_filter_leaking_answer_is_not_asked():
    # "What is 5 + 0?": answer 5 shows the hidden 5, so question 0 is never sent for it.
    problem = "What is 5 + 0?"
    backend = ScriptedBackend({problem: ans(5, 5, 5, 5)})
    (record,) = asyncio.run(_filter([arith_row(5, 0, "p0")], backend))
    assert record["leaked_pairs"] == 1
    assert [q["accuracy"] for q in record["questions"]] == [[None], [1.0]]
    assert [q["rule"] for q in record["questions"]] == ["unanswerable", "kept"]
    assert len(backend.dual_requests()) == 1


def test_filter_k_samples_and_threshold():
    # K=3 replies for the first question: two right, one wrong -> accuracy 2/3 for answer 5.
    def dual(prompt, sample):
        return ["Va = 2", "Va = 2", "Va = 8"][sample] if "Va" in prompt and "is 5." in prompt else None

    backend = ScriptedBackend({Q: ans(5, 6, 5, 6)}, dual=dual)
    (record,) = asyncio.run(_filter([arith_row(2, 3, "p0")], backend, k=3))
    assert record["questions"][0]["accuracy"] == [2 / 3, 0.0]
    assert record["questions"][0]["rule"] == "kept"
    assert record["generations"]["dual_samples"] == 2 * 2 * 3
    backend = ScriptedBackend({Q: ans(5, 6, 5, 6)}, dual=dual)
    (record,) = asyncio.run(_filter([arith_row(2, 3, "p0")], backend, k=3, recover_threshold=0.9))
    assert record["questions"][0]["rule"] == "unanswerable"


def test_filter_failures_are_recorded_not_dropped_silently():
    backend = ScriptedBackend(
        {Q: ans(5, 7)}, fail=lambda p: ("Vb" in p and "is 7." in p) or p == "What is 4 + 4?"
    )
    bad_row = arith_row(1, 1, "bad")
    del bad_row["extra_info"]["dupo"]
    failing_primal = arith_row(4, 4, "p2")
    records = asyncio.run(_filter([arith_row(2, 3, "p0"), bad_row, failing_primal], backend, n=2))
    partly, invalid, failed = records
    # one question judged (kept), one with no verdict: the row is failed (redone by --resume), not cut
    assert [q["rule"] for q in partly["questions"]] == ["kept", "failed"]
    assert partly["status"] == "failed" and "1 of 2 dual questions got no verdict" in partly["error"]
    assert partly["kept"] == [] and partly["generations"]["failed_requests"] == 1
    assert (
        invalid["status"] == "invalid"
        and "extra_info.dupo" in invalid["error"]
        and "row 1" in invalid["error"]
    )
    assert failed["status"] == "failed" and "scripted failure" in failed["error"]
    report = filter_report(records)
    assert report["problems"] == {
        "in": 3,
        "kept": 0,
        "dropped_no_question_left": 0,
        "dropped_failed": 2,
        "dropped_invalid": 1,
    }
    # every question of a failed row counts as failed: "kept" matches the questions written (none)
    assert report["questions"]["kept"] == 0 and report["questions"]["dropped_failed"] == 2
    assert [r["id"] for r in report["failed_rows"]] == ["p0", "bad", "p2"]


def test_filter_report_counts_rules_and_generations():
    rows = [arith_row(2, 3, "p0"), arith_row(1, 1, "p1")]

    def dual(prompt, sample):
        return "Va = 2" if "Va + 3" in prompt else None

    backend = ScriptedBackend({Q: ans(5, 7, 7, 7), "What is 1 + 1?": ans(3, 3, 3, None)}, dual=dual)
    report = filter_report(asyncio.run(_filter(rows, backend)))
    assert report["problems"]["in"] == 2 and report["problems"]["kept"] == 1
    assert report["problems"]["dropped_no_question_left"] == 1
    assert report["questions"] == {
        "in": 4,
        "kept": 1,
        "dropped_unanswerable": 2,
        "dropped_not_unique": 1,
        "dropped_failed": 0,
    }
    assert report["candidates"] == {"sampled": 8, "no_answer": 1, "distinct_answers": 3, "leaked_pairs": 0}
    assert report["generations"]["dual_requests"] == 2 * 2 + 1 * 2 == len(backend.dual_requests())


# ---------------------------------------------------------------- rerank


def test_rerank_dual_accuracy_beats_majority():
    backend = ScriptedBackend({Q: ans(7, 5, 7, None)})
    (row,) = asyncio.run(_rerank([arith_row(2, 3, "r0")], backend))
    assert row["chosen_answer"] == "5" and row["chosen_index"] == 1 and row["majority_answer"] == "7"
    assert [(c["answer"], c["dual_accuracy"], c["correct"]) for c in row["candidates"]] == [
        ("7", 0.0, False),
        ("5", 1.0, True),
        ("7", 0.0, False),
        (None, None, False),
    ]
    assert row["correct"] == {"first": False, "majority": False, "dupo": True, "pass_at_n": True}
    assert row["gold"] == "5" and row["num_duals"] == 2


def test_rerank_ties_go_to_votes_then_order():
    # The dual never recovers anything: all accuracies 0, so votes decide (7 has two).
    backend = ScriptedBackend({Q: ans(5, 7, 7, 9)}, dual=lambda p, k: "no idea")
    (row,) = asyncio.run(_rerank([arith_row(2, 3, "r0")], backend))
    assert row["chosen_answer"] == "7" and row["chosen_index"] == 1
    assert row["correct"]["dupo"] is False and row["correct"]["pass_at_n"] is True
    # Same accuracy and same votes: the first candidate.
    backend = ScriptedBackend({Q: ans(8, 9, 9, 8)}, dual=lambda p, k: "no idea")
    (row,) = asyncio.run(_rerank([arith_row(2, 3, "r0")], backend))
    assert row["chosen_answer"] == "8" and row["chosen_index"] == 0 and row["majority_answer"] == "8"


def test_rerank_all_equal_pool_shares_one_dual_pass():
    backend = ScriptedBackend({Q: ans(5, 5, 5, 5)})
    (row,) = asyncio.run(_rerank([arith_row(2, 3, "r0")], backend, k=2))
    assert row["chosen_answer"] == "5"
    assert all(c["dual_accuracy"] == 1.0 for c in row["candidates"])
    assert row["generations"]["dual_requests"] == 2  # one distinct answer x 2 questions, not 4 x 2
    assert row["generations"]["dual_samples"] == 4
    assert len(backend.dual_requests()) == 2
    assert row["correct"] == {"first": True, "majority": True, "dupo": True, "pass_at_n": True}


def test_rerank_without_sharing_judges_every_candidate():
    backend = ScriptedBackend({Q: ans(5, 5, 7, None)})
    (row,) = asyncio.run(_rerank([arith_row(2, 3, "r0")], backend, share=False))
    assert row["generations"]["dual_requests"] == 3 * 2 == len(backend.dual_requests())
    assert row["chosen_answer"] == "5"
    shared = ScriptedBackend({Q: ans(5, 5, 7, None)})
    (row,) = asyncio.run(_rerank([arith_row(2, 3, "r0")], shared, share=True))
    assert row["generations"]["dual_requests"] == 2 * 2 == len(shared.dual_requests())


def test_rerank_no_answer_pool_and_no_gold():
    backend = ScriptedBackend({Q: ans(None, None)})
    (row,) = asyncio.run(_rerank([arith_row(2, 3, "r0", gold=False)], backend, n=2))
    assert row["chosen_answer"] is None and row["chosen_index"] is None
    assert [c["dual_accuracy"] for c in row["candidates"]] == [None, None]
    assert "correct" not in row and "gold" not in row
    assert backend.dual_requests() == []


def test_rerank_failed_requests_are_recorded():
    # The dual for answer 7 fails on question Vb: that cell is left out of 7's mean, not scored 0.
    backend = ScriptedBackend(
        {Q: ans(7, 5), "What is 4 + 4?": ans(8)},
        fail=lambda p: ("Vb" in p and "is 7." in p) or p == "What is 4 + 4?",
    )
    ok, failed = asyncio.run(_rerank([arith_row(2, 3, "r0"), arith_row(4, 4, "r1")], backend, n=2))
    assert ok["status"] == "ok" and ok["failed_dual_questions"] == 1
    assert ok["generations"]["failed_requests"] == 1
    assert [c["dual_accuracy"] for c in ok["candidates"]] == [0.0, 1.0]
    assert failed["status"] == "failed" and "scripted failure" in failed["error"]
    # a failed row carries no verdict: a request that failed says nothing about the answer
    assert failed["gold"] == "8" and "correct" not in failed


def test_rerank_raw_rows_decompose_without_the_gold_answer():
    # Raw rows go through task.decompose; the gold answer is dropped from the example first.
    seen = []

    class Recording(ArithTask):
        def decompose(self, example, seed=0):
            seen.append(dict(example))
            return super().decompose(example, seed)

    from dupo_verl.tasks.registry import _TASKS

    _TASKS["offline_test_arith_rec"] = Recording
    try:
        backend = ScriptedBackend({Q: ans(5, 7)})
        (row,) = asyncio.run(
            _rerank([{"id": "x", "a": 2, "b": 3, "answer": "5"}], backend, n=2, task="offline_test_arith_rec")
        )
    finally:
        del _TASKS["offline_test_arith_rec"]
    assert seen == [{"id": "x", "a": 2, "b": 3}]
    assert row["id"] == "x" and row["gold"] == "5" and row["chosen_answer"] == "5"


def test_rerank_given_candidates_skip_sampling():
    backend = ScriptedBackend({})
    jobs_rows = [arith_row(2, 3, "r0")]
    settings = RerankSettings(dual=DualOptions(dual_samples=1, max_retries=0))
    jobs = build_jobs(jobs_rows, RerankInput(), {"r0": ans(9, 5, 9)})

    async def go():
        async with MicroBatcher(backend) as generate:
            return await rerank_row(jobs[0], generate, settings)

    row = asyncio.run(go())
    assert row["chosen_answer"] == "5" and row["generations"]["primal_samples"] == 0
    assert len(backend.requests) == 2 * 2  # only dual work: 2 distinct answers x 2 questions


def test_rerank_counts_math_checks_that_timed_out(monkeypatch):
    """A grouping check with no verdict is kept apart (never a silent match) and counted per row."""
    from dupo_verl.offline import rerank as rerank_module
    from reward_fns.math import answers_equal

    stuck = "9^{9^{9}} - 9^{9^{9}} + 5"  # equal to 5, but no symbolic check finishes it in 0.3 s of CPU
    # the arithmetic test task reads plain numbers only: its matcher is swapped for a real math check
    # that cannot finish (each comparison of two distinct answers asks math-verify about `stuck`)
    monkeypatch.setattr(
        rerank_module, "answer_matcher", lambda task: lambda a, b: answers_equal(stuck, a, timeout=0.3)
    )
    backend = ScriptedBackend({})
    settings = RerankSettings(dual=DualOptions(dual_samples=1, max_retries=0))
    jobs = build_jobs([arith_row(2, 3, "r0")], RerankInput(), {"r0": ans(5, 9)})

    async def go():
        async with MicroBatcher(backend) as generate:
            return await rerank_row(jobs[0], generate, settings)

    row = asyncio.run(go())
    assert row["generations"]["verify_timeouts"] == 1
    assert [c["answer"] for c in row["candidates"]] == ["5", "9"]  # kept apart, not merged
    summary = summarize([row])
    assert summary["verify_timeouts"] == 1
