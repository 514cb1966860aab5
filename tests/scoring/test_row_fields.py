"""A stored row's `extra_info["dupo"]` is untrusted data: each malformed field is one ValueError
naming it, never Python's own message, an OverflowError, or a value coerced into a wrong one."""

from __future__ import annotations

import numpy as np
import pytest

from dupo_verl.scoring import task_from_info
from dupo_verl.tasks import DualQuestion
from dupo_verl.tasks.templates import DUAL_QUESTIONS

DUAL = {"masked_text": "Tom has X apples and eats 2. He has 3 left.", "variable": "X", "value": "5"}


def _info(**fields):
    return {"task": "math", "duals": [DUAL], **fields}


BAD_DUALS = [
    ({"value": None}, "'value'"),  # was "None": a dual answering \boxed{None} was paid 1.0
    ({"value": {"a": 1}}, "'value'"),
    ({"value": ""}, "'value'"),  # can never be rebuilt: the row would score 0 silently
    ({"value": "   "}, "'value'"),
    ({"value": float("nan")}, "'value'"),
    ({"value": float("inf")}, "'value'"),
    ({"value": True}, "'value'"),
    ({"masked_text": None}, "'masked_text'"),
    ({"masked_text": 5}, "'masked_text'"),
    ({"variable": None}, "'variable'"),
    ({"template": float("inf")}, "'template'"),  # was a bare OverflowError
    ({"template": float("nan")}, "'template'"),
    ({"template": -1}, "'template'"),
    ({"template": 2.7}, "'template'"),
    ({"template": "x"}, "'template'"),
    ({"template": True}, "'template'"),
]


@pytest.mark.parametrize(("change", "field"), BAD_DUALS, ids=[repr(c) for c, _ in BAD_DUALS])
def test_a_bad_dual_field_is_named(change, field):
    with pytest.raises(ValueError, match=field) as info:
        DualQuestion.from_dict({**DUAL, **change})
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=rf"\['duals'\]\[0\]: .*{field}"):
        task_from_info(_info(duals=[{**DUAL, **change}]))


def test_template_past_the_math_wordings_is_named():
    with pytest.raises(ValueError, match=rf"\['duals'\]\[1\]: .*'template' must be below {len(DUAL_QUESTIONS)}"):
        task_from_info(_info(duals=[DUAL, {**DUAL, "template": 99}]))
    _, (dual,) = task_from_info(_info(duals=[{**DUAL, "template": len(DUAL_QUESTIONS) - 1}]))
    assert dual.template == len(DUAL_QUESTIONS) - 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"value": 5}, {"value": "5"}),  # hand-written rows may store the number itself
        ({"value": 2.5}, {"value": "2.5"}),
        ({"value": np.int64(7)}, {"value": "7"}),
        ({"template": None}, {"template": 0}),
        ({"template": 3.0}, {"template": 3}),
        ({"template": np.int64(2)}, {"template": 2}),
    ],
    ids=repr,
)
def test_good_values_are_read(change, expected):
    dual = DualQuestion.from_dict({**DUAL, **change})
    assert {k: getattr(dual, k) for k in expected} == expected
    assert type(dual.value) is str and type(dual.template) is int


def test_translation_row_with_empty_masked_text_and_variable_is_read():
    dual = DualQuestion.from_dict({"masked_text": "", "variable": "", "value": "Hola.", "template": 0})
    assert dual == DualQuestion("", "", "Hola.", 0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"params": "abc"}, r"\['params'\] must be a mapping of task parameters, got str"),
        ({"params": 5}, r"\['params'\] must be a mapping of task parameters, got int"),
        ({"params": [["timeout", 3]]}, r"\['params'\] must be a mapping of task parameters, got list"),
        ({"params": {"timeout": b"2"}}, r"\['params'\] must hold plain values"),
        ({"duals": 5}, r"\['duals'\] must be a list of dual questions, got int"),
        ({"duals": "abc"}, r"\['duals'\] must be a list of dual questions, got str"),
        ({"duals": DUAL}, r"\['duals'\] must be a list of dual questions, got dict"),
        ({"duals": [None]}, r"\['duals'\]\[0\]: dual question must be a mapping, got NoneType"),
        ({"duals": [DUAL, "abc"]}, r"\['duals'\]\[1\]: dual question must be a mapping, got str"),
    ],
    ids=repr,
)
def test_bad_params_or_duals_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        task_from_info(_info(**fields))


def test_numpy_containers_from_a_parquet_reader_are_read():
    task, duals = task_from_info(
        {"task": "math", "params": {"timeout": np.float64(3.0)}, "duals": np.array([DUAL], dtype=object)}
    )
    assert task.name == "math" and duals == [DualQuestion.from_dict(DUAL)]
