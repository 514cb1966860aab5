"""The examples in reward_fns' docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["reward_fns.extraction", "reward_fns.numbers", "reward_fns.math", "reward_fns.text",
           "reward_fns.structured", "reward_fns.shaping", "reward_fns.scoring", "reward_fns.latex",
           "reward_fns.units", "reward_fns.verify_pool"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
