"""JSON similarity and reward shaping."""

from __future__ import annotations

import math

import pytest

from reward_fns.shaping import combine, exp_shaping
from reward_fns.structured import json_similarity


def test_json_similarity_counts_keys_nesting_and_leaves():
    assert json_similarity('{"a": 1, "b": [1, 2]}', {"a": 1, "b": [1, 2]}) == 1.0
    assert json_similarity('{"a": 1, "b": [1, 2]}', {"a": 1, "b": [1, 3]}) == 0.75
    assert json_similarity({"a": 1}, {"a": 1, "b": 2}) == 0.5  # a key on one side only scores 0
    assert json_similarity({"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": 3}}) == 0.5
    assert json_similarity([1, 2, 3, 4], [1, 2]) == 0.5
    assert json_similarity({"a": 1}, [1]) == 0.0
    assert json_similarity("1", 1.0) == 1.0
    assert json_similarity("true", 1) == 0.0  # a boolean is not a number
    assert json_similarity("not json", "not json") == 1.0
    assert json_similarity("not json", "other") == 0.0
    assert json_similarity({}, {}) == 1.0 and json_similarity([], []) == 1.0


def test_json_similarity_survives_hostile_json():
    deep = "[" * 50_000 + "]" * 50_000
    assert 0.0 <= json_similarity(deep, deep) <= 1.0
    assert json_similarity("9" * 10_000, "9" * 10_000) == 1.0  # over Python's int-digit limit: a string leaf
    assert json_similarity("NaN", "NaN") == 1.0


def test_exp_shaping():
    assert exp_shaping(0.0) == 1.0
    assert exp_shaping(2.0, lam=0.5) == pytest.approx(math.exp(-1.0))
    assert exp_shaping(math.inf) == 0.0
    assert exp_shaping(math.inf, lam=0.0) == 1.0
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError, match="distance"):
            exp_shaping(bad)
    with pytest.raises(ValueError, match="lam"):
        exp_shaping(1.0, lam=-1.0)


def test_combine_is_a_weighted_mean_with_clear_errors():
    assert combine({"dual": 1.0, "format": 0.0}, {"dual": 3, "format": 1}) == 0.75
    assert combine({"dual": 0.2}, {"dual": 5}) == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"no weight for \['extra'\]"):
        combine({"dual": 1.0, "extra": 1.0}, {"dual": 1.0})
    with pytest.raises(ValueError, match=r"no reward for \['format'\]"):
        combine({"dual": 1.0}, {"dual": 1.0, "format": 1.0})
    with pytest.raises(ValueError, match="weight 'dual' must be finite and >= 0"):
        combine({"dual": 1.0}, {"dual": -1.0})
    with pytest.raises(ValueError, match="at least one must be > 0"):
        combine({"dual": 1.0}, {"dual": 0.0})
    with pytest.raises(ValueError, match="reward 'dual' must be finite"):
        combine({"dual": math.nan}, {"dual": 1.0})
