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
    assert strict.params == {"strict": True}


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
