"""The two-sum toy duality: fixed short formats, the generator, scoring and leaks."""

from __future__ import annotations

import pytest

from dupo_verl.tasks import get_task
from dupo_verl.tasks.two_sum import generate_problems


def test_formats() -> None:
    task = get_task("two_sum")
    example = {"a": 12, "b": 35}
    assert task.primal_messages(example) == [{"role": "user", "content": "12+35="}]
    assert task.ground_truth(example) == "47"
    (dual,) = task.decompose(example).duals
    assert (dual.masked_text, dual.variable, dual.value) == ("12+V=", "V", "35")
    assert task.dual_messages(dual, "47") == [{"role": "user", "content": "12+V=47 V="}]
    assert task.decompose({"a": "7", "b": "0"}).duals[0].masked_text == "7+V="  # strings from csv


def test_scoring() -> None:
    task = get_task("two_sum")
    (dual,) = task.decompose({"a": 12, "b": 35}).duals
    assert task.extract_primal_answer("47") == "47"
    assert task.extract_primal_answer(" 47 and more") == "47"
    assert task.extract_primal_answer("no digits") is None
    assert task.score_reconstruction(dual, "35") == 1.0
    assert task.score_reconstruction(dual, "36") == 0.0
    assert task.score_reconstruction(dual, "") == 0.0
    assert task.gold_score("47", "47") == 1.0 and task.gold_score("48", "47") == 0.0
    strict = get_task("two_sum", strict=True)
    assert strict.extract_primal_answer("47") == "47" and strict.extract_primal_answer("47 and more") is None
    assert strict.params == {"strict": True, "hide": "b"}


def test_hide_a_and_both() -> None:
    """hide="a" asks A in the commuted form B+V=S; "both" is the two-dual ensemble, B's question first."""
    (dual_a,) = get_task("two_sum", hide="a").decompose({"a": 12, "b": 35}).duals
    assert (dual_a.masked_text, dual_a.variable, dual_a.value) == ("35+V=", "V", "12")
    task = get_task("two_sum", hide="both")
    assert task.params == {"strict": False, "hide": "both"}
    hide_b, hide_a = task.decompose({"a": 12, "b": 35}).duals
    assert (hide_b.masked_text, hide_b.value) == ("12+V=", "35") and hide_a == dual_a
    assert task.dual_messages(hide_a, "47") == [{"role": "user", "content": "35+V=47 V="}]
    assert task.score_reconstruction(hide_a, "12") == 1.0 and task.score_reconstruction(hide_a, "35") == 0.0
    # answering the hidden A leaks for the hide-A question (unless B, the shown operand, is 0)
    assert task.leaks(hide_a, "12") and not task.leaks(hide_b, "12")
    (zero_b,) = get_task("two_sum", hide="a").decompose({"a": 7, "b": 0}).duals
    assert not task.leaks(zero_b, "7")
    with pytest.raises(ValueError, match="hide must be one of b, a, both, got 'c'"):
        get_task("two_sum", hide="c")


def test_answering_b_leaks_unless_a_is_zero() -> None:
    task = get_task("two_sum")
    (dual,) = task.decompose({"a": 12, "b": 35}).duals
    assert task.leaks(dual, "35") and not task.leaks(dual, "47")
    (zero,) = task.decompose({"a": 0, "b": 35}).duals
    assert not task.leaks(zero, "35")


def test_generator_draws_distinct_pairs_in_range() -> None:
    problems = generate_problems(500, operand_min=10, operand_max=40, seed=3)
    pairs = {(p["a"], p["b"]) for p in problems}
    assert len(pairs) == 500 and all(10 <= a <= 40 and 10 <= b <= 40 for a, b in pairs)
    assert problems == generate_problems(500, operand_min=10, operand_max=40, seed=3)
    assert problems != generate_problems(500, operand_min=10, operand_max=40, seed=4)
    assert len(generate_problems(961, operand_min=10, operand_max=40)) == 961  # every pair once
    with pytest.raises(ValueError, match="distinct pairs"):
        generate_problems(962, operand_min=10, operand_max=40)
    with pytest.raises(ValueError, match="operand_min"):
        generate_problems(5, operand_min=-3, operand_max=4)


@pytest.mark.parametrize(
    "bad", [{"a": -1, "b": 2}, {"a": "x", "b": 2}, {"a": 1.5, "b": 2}, {"a": True, "b": 2}]
)
def test_bad_operands_are_rejected(bad) -> None:
    with pytest.raises(ValueError, match="operand"):
        get_task("two_sum").decompose(bad)


def _dual_from_table(table: dict[str, str], asked: list[str]):
    """A dual that answers each prompt from `table` (what a real model would have replied)."""
    from dupo_verl.scoring import Completion

    async def generate(messages, *, n, temperature, top_p, max_tokens, session_id):
        asked.append(messages[-1]["content"])
        return [Completion(table[messages[-1]["content"]], 1)] * n

    return generate


async def test_the_ensemble_catches_a_slip_one_dual_confirms() -> None:
    """12+35 answered 57 (a carry slip): the hide-B dual confirms it by the mirror borrow slip, the
    hide-A dual subtracts right. `min` pays nothing, `mean` half; a right sum is paid in full."""
    from dupo_verl.scoring import DualOptions, score_response

    task = get_task("two_sum", hide="both")
    duals = task.decompose({"a": 12, "b": 35}).duals
    table = {"12+V=57 V=": "35", "35+V=57 V=": "22", "12+V=47 V=": "35", "35+V=47 V=": "12"}
    results = {}
    for aggregate in ("min", "mean"):
        options = DualOptions.from_mapping({"dual_questions_per_rollout": 2, "dual_aggregate": aggregate})
        asked: list[str] = []
        slip = await score_response(task, duals, "57", _dual_from_table(table, asked), options, "s", "47")
        assert sorted(asked) == ["12+V=57 V=", "35+V=57 V="] and slip.metrics["dupo_dual_questions"] == 2.0
        right = await score_response(task, duals, "47", _dual_from_table(table, asked), options, "s", "47")
        assert right.reward == 1.0
        results[aggregate] = slip.reward
    assert results == {"min": 0.0, "mean": 0.5}
    # with one question per rollout only the first (hide B) is asked, and it is fooled
    one = DualOptions.from_mapping({"dual_questions_per_rollout": 1, "dual_aggregate": "min"})
    asked = []
    fooled = await score_response(task, duals, "57", _dual_from_table(table, asked), one, "s")
    assert asked == ["12+V=57 V="] and fooled.reward == 1.0
    with pytest.raises(ValueError, match="dual_aggregate='max' \\(str\\) is invalid: expected one of \\['mean', 'min'\\]"):
        DualOptions.from_mapping({"dual_aggregate": "max"})
