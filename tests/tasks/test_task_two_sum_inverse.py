"""Two-sum with roles swapped: its prompts are two-sum's own, and two-sum's primal is its judge."""

from __future__ import annotations

import pytest

from dupo_verl.data.readers import RawRecord
from dupo_verl.data.rows import RowOptions, build_row
from dupo_verl.scoring import Completion, DualOptions, score_response, task_from_info
from dupo_verl.tasks import get_task

EXAMPLE = {"a": 12, "s": 47}


def test_prompts_are_two_sum_prompts_with_roles_swapped() -> None:
    forward, inverse = get_task("two_sum"), get_task("two_sum_inverse")
    for a, b in ((12, 35), (0, 7), (49, 0), (3, 3)):
        (fwd_dual,) = forward.decompose({"a": a, "b": b}).duals
        example = {"a": a, "s": a + b}
        assert inverse.primal_messages(example) == forward.dual_messages(fwd_dual, str(a + b))
        (dual,) = inverse.decompose(example).duals
        assert (dual.variable, dual.value) == ("", str(a + b))
        assert inverse.dual_messages(dual, str(b)) == forward.primal_messages({"a": a, "b": b})
        assert inverse.ground_truth(example) == str(b)
    assert inverse.primal_messages({"a": "7", "s": "9"}) == [{"role": "user", "content": "7+V=9 V="}]


def test_scoring_and_extraction() -> None:
    task = get_task("two_sum_inverse")
    (dual,) = task.decompose(EXAMPLE).duals
    assert task.extract_primal_answer("35") == "35"
    assert task.extract_primal_answer(" 35 and more") == "35"
    assert task.extract_primal_answer("none") is None
    assert task.score_reconstruction(dual, "47") == 1.0
    assert task.score_reconstruction(dual, "35") == 0.0 and task.score_reconstruction(dual, "") == 0.0
    assert task.gold_score("35", "35") == 1.0 and task.gold_score("47", "35") == 0.0
    strict = get_task("two_sum_inverse", strict=True)
    assert strict.params == {"strict": True}
    assert strict.extract_primal_answer("35 and more") is None
    assert strict.score_reconstruction(dual, "47 ok") == 0.0 and task.score_reconstruction(dual, "47 ok") == 1.0


def test_answering_s_leaks_unless_a_is_zero() -> None:
    task = get_task("two_sum_inverse")
    (dual,) = task.decompose(EXAMPLE).duals
    assert task.leaks(dual, "47") and not task.leaks(dual, "35")
    (zero,) = task.decompose({"a": 0, "s": 47}).duals
    assert not task.leaks(zero, "47")


@pytest.mark.parametrize("bad", [{"a": 5, "s": 4}, {"a": -1, "s": 2}, {"a": "x", "s": 2}, {"a": True, "s": 2}])
def test_bad_inputs_are_rejected(bad) -> None:
    with pytest.raises(ValueError, match="two_sum"):
        get_task("two_sum_inverse").decompose(bad)


def _prepared_row() -> dict:
    """The row `dupo-verl prepare task --name two_sum_inverse` writes for one record."""
    task = get_task("two_sum_inverse")
    outcome = build_row(task, RawRecord(0, {"a": 12, "s": 47}), RowOptions(data_source="dupo/two_sum_inverse"))
    assert outcome.row is not None, outcome.message
    return outcome.row


def _dual_answering(reply: str, asked: list):
    async def generate(messages, *, n, temperature, top_p, max_tokens, session_id):
        asked.append(messages[-1]["content"])
        return [Completion(reply, 1)] * n

    return generate


async def test_reward_through_the_row_is_the_forward_sum() -> None:
    row = _prepared_row()
    assert row["prompt"] == [{"role": "user", "content": "12+V=47 V="}]
    assert row["reward_model"]["ground_truth"] == "35"
    task, duals = task_from_info(row["extra_info"]["dupo"])
    assert task.name == "two_sum_inverse" and [d.value for d in duals] == ["47"]
    options = DualOptions(dual_questions_per_rollout=1)
    asked: list[str] = []
    right = await score_response(task, duals, "35", _dual_answering("47", asked), options, "s", ground_truth="0")
    assert asked == ["12+35="] and right.reward == 1.0
    assert right.metrics["dupo_gold_acc"] == 0.0  # a planted wrong label is reported, never rewarded
    asked.clear()
    # a wrong candidate: the dual adds correctly, so it does not get S back
    wrong = await score_response(task, duals, "36", _dual_answering("48", asked), options, "s", ground_truth="35")
    assert asked == ["12+36="] and wrong.reward == 0.0
    assert wrong.metrics["dupo_gold_acc"] == 0.0 and wrong.metrics["dupo_agrees_with_gold"] == 1.0
    # answering S itself is never shown to the dual
    asked.clear()
    copy = await score_response(task, duals, "47", _dual_answering("47", asked), options, "s")
    assert asked == [] and copy.reward == 0.0 and copy.metrics["dupo_leaks"] == 1.0
