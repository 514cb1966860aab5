"""The gold label the DuPO agent loop and reward manager read is the one validation reads.

`str(gold)` used to turn pandas' NaN for a missing answer into "nan", which `\\boxed{nan}` matched,
and a list of answers into its repr, which no right answer matched.
"""

from __future__ import annotations

import numpy as np
import pytest

from dupo_verl.tasks import get_task
from dupo_verl.verl.rows import gold_label
from reward_fns import compute_score


@pytest.mark.parametrize("gold", [None, float("nan"), float("inf"), "nan", " ", True, b"7", {"a": 1}, [], ["7", "8"]])
def test_no_usable_or_no_single_gold_label_is_none(gold):
    assert gold_label({"ground_truth": gold}) is None


@pytest.mark.parametrize("gold", [7, " 7 ", "7", ["7"], ["", "7"], np.array(["7", "7"]), np.array([7])])
def test_one_usable_answer_is_the_label(gold):
    assert gold_label({"ground_truth": gold}) == "7"


@pytest.mark.parametrize("gold", [float("nan"), "nan", None, 7, ["7"], np.array(["7"])])
def test_the_dupo_gold_check_agrees_with_validation(gold):
    """Where validation counts a row as unlabelled, the DuPO path has no label; where it has one,
    both pay the same answers."""
    task = get_task("math")
    label = gold_label({"ground_truth": gold})
    for answer in ("so \\boxed{7}", "so \\boxed{nan}", "so \\boxed{8}"):
        validation = compute_score("openai/gsm8k", answer, gold)
        if label is None:
            assert validation["gold_missing"] == 1.0
        else:
            assert task.gold_score(answer, label) == validation["score"], (gold, answer)
