"""Similarity of two JSON values: shared keys, nesting and equal leaves, on a 0..1 scale."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["json_similarity"]

MAX_JSON_CHARS = 1_000_000  # longer strings are compared as plain strings, never parsed
MAX_DEPTH = 100  # deeper structure counts as one leaf (equal or not)


def json_similarity(a: Any, b: Any) -> float:
    """How alike two JSON values are, 1.0 meaning equal.

    Strings are parsed as JSON first (a string that is not JSON is a string leaf). Objects score
    the mean over the union of keys (a key on one side only scores 0), arrays the mean over
    positions up to the longer length, leaves 1 when equal (numbers by value, ``true`` is not
    ``1``) and 0 otherwise.

    >>> json_similarity('{"a": 1, "b": [1, 2]}', {"a": 1, "b": [1, 3]})
    0.75
    """
    return _similarity(_load(a), _load(b), 0)


def _load(value: Any) -> Any:
    if isinstance(value, str) and len(value) <= MAX_JSON_CHARS:
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def _similarity(a: Any, b: Any, depth: int) -> float:
    if depth >= MAX_DEPTH:
        return _leaf_equal(a, b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        keys = set(a) | set(b)
        if not keys:
            return 1.0
        return sum(_similarity(a[k], b[k], depth + 1) for k in keys if k in a and k in b) / len(keys)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if not a and not b:
            return 1.0
        return sum(_similarity(x, y, depth + 1) for x, y in zip(a, b, strict=False)) / max(len(a), len(b))
    return _leaf_equal(a, b)


def _leaf_equal(a: Any, b: Any) -> float:
    if isinstance(a, bool) or isinstance(b, bool):
        return float(type(a) is type(b) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)))
    if type(a) is not type(b) and not (isinstance(a, Mapping) and isinstance(b, Mapping)):
        return 0.0
    try:
        return float(a == b)
    except RecursionError:
        return 0.0
