"""Supervised examples and per-method rows built from real `dupo-verl prepare two-sum` output."""

from __future__ import annotations

import pytest

from dupo_verl.demo.examples import DUAL, PRIMAL, examples_of, score, task_of
from dupo_verl.demo.two_sum_data import (
    DUAL_SOURCE,
    PRIMAL_SOURCE,
    method_rows,
    read_rows,
    validation_rows,
    wrong_label,
)


def test_examples_follow_the_task_prompts(two_sum_problems):
    train, _ = two_sum_problems
    task = task_of(train)
    for p in train[:50]:
        a, b = p.primal.messages[-1]["content"].rstrip("=").split("+")
        assert p.primal.target == str(int(a) + int(b))
        (dual,) = p.duals
        # the dual sees A and the TRUE sum and must answer B
        assert dual.messages[-1]["content"] == f"{a}+V={int(a) + int(b)} V="
        assert dual.target == b
        assert score(task, p.primal, p.primal.target) == 1.0
        assert score(task, p.primal, str(int(p.primal.target) + 1)) == 0.0
        assert score(task, dual, dual.target) == 1.0
        assert score(task, dual, "x") == 0.0
    assert len(examples_of(train, PRIMAL)) == len(train) == len(examples_of(train, DUAL))
    with pytest.raises(ValueError, match="kind"):
        examples_of(train, "both")


def test_train_and_heldout_share_no_pair(two_sum_problems):
    train, heldout = two_sum_problems
    assert len(heldout) == 60
    seen = {p.primal.messages[-1]["content"] for p in train}
    assert not seen & {p.primal.messages[-1]["content"] for p in heldout}


def test_dupo_and_shuffled_rows_carry_only_wrong_labels(two_sum_files):
    rows = read_rows(two_sum_files[0])
    for method, agent in (("dupo", "dupo_agent"), ("shuffled", "dupo_shuffled_agent")):
        planted = method_rows(rows, method)
        assert len(planted) == len(rows)
        for old, new in zip(rows, planted, strict=True):
            assert new["agent_name"] == agent
            assert new["reward_model"]["ground_truth"] != old["reward_model"]["ground_truth"]
            assert int(new["reward_model"]["ground_truth"]) >= 0
            assert new["prompt"] == old["prompt"] and new["extra_info"] == old["extra_info"]
    oracle = method_rows(rows, "oracle")
    assert [r["reward_model"]["ground_truth"] for r in oracle] == [r["reward_model"]["ground_truth"] for r in rows]
    assert {r["agent_name"] for r in oracle} == {"single_turn_agent"}
    with pytest.raises(ValueError, match="unknown method"):
        method_rows(rows, "warm_start")


def test_wrong_label_is_never_the_gold():
    import random

    rng = random.Random(0)
    for gold in ("0", "1", "9", "57", "198"):
        labels = {wrong_label(gold, rng) for _ in range(200)}
        assert gold not in labels and all(int(x) >= 0 for x in labels)


def test_bad_gold_names_the_row(two_sum_files):
    rows = read_rows(two_sum_files[0])[:3]
    rows[2]["reward_model"] = {"style": "rule", "ground_truth": "seven"}
    with pytest.raises(ValueError, match="row 2"):
        method_rows(rows, "dupo")


def test_validation_rows_hold_true_labels(two_sum_files):
    primal, dual = validation_rows(read_rows(two_sum_files[1]))
    assert len(primal) == len(dual) == 60
    for p, d in zip(primal, dual, strict=True):
        a, b = p["prompt"][0]["content"].rstrip("=").split("+")
        assert p["data_source"] == PRIMAL_SOURCE and d["data_source"] == DUAL_SOURCE
        assert p["agent_name"] == d["agent_name"] == "single_turn_agent"
        assert p["reward_model"]["ground_truth"] == str(int(a) + int(b))
        assert d["prompt"][0]["content"] == f"{a}+V={int(a) + int(b)} V="
        assert d["reward_model"]["ground_truth"] == b
