"""A malformed row, or anchored-judge settings of the wrong type, give one line naming the row or
setting, not a bare OverflowError / AttributeError or a check that passes on a quoted "false"."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from dupo_verl.scoring import DualOptions
from dupo_verl.verl.anchor import require_anchor
from dupo_verl.verl.rows import check_rows_dual_mode, row_task

DUAL = {"masked_text": "Tom has X apples and eats 2. He has 3 left.", "variable": "X", "value": "5"}


def _extra(**dual_fields):
    return {"index": 7, "dupo": {"task": "math", "duals": [{**DUAL, **dual_fields}]}}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (_extra(template=float("inf")), "'template'"),  # was a bare OverflowError, no row named
        (_extra(template=99), "'template' must be below"),
        (_extra(value=None), "'value'"),
        (_extra(masked_text=None), "'masked_text'"),
        ({"index": 7, "dupo": {"task": "math", "params": "abc", "duals": [DUAL]}}, r"\['params'\]"),
        ({"index": 7, "dupo": {"task": "math", "duals": 5}}, r"\['duals'\]"),
        ({"index": 7, "dupo": {"task": "math", "duals": [None]}}, r"\['duals'\]\[0\]"),
    ],
    ids=repr,
)
def test_a_malformed_row_names_the_row_and_the_field(extra, field):
    with pytest.raises(ValueError, match=rf"^row index=7 data_source='src': bad extra_info\['dupo'\]: .*{field}"):
        row_task(extra, "src")


def test_extra_info_that_is_not_a_mapping_names_the_row():
    with pytest.raises(ValueError, match=r"^row data_source='src': extra_info must be a mapping"):
        row_task("math", "src")


def test_the_likelihood_start_up_check_leaves_malformed_rows_to_row_task():
    """The start-up check failed on `template: inf` with the same bare OverflowError."""
    rows = [
        {"extra_info": _extra(template=float("inf")), "data_source": "src"},
        {"extra_info": "not a mapping", "data_source": "src"},
        {"extra_info": _extra(), "data_source": "src"},
    ]
    assert check_rows_dual_mode(rows, DualOptions(dual_mode="likelihood"), "the train file") == 1


def _reward(reward_manager, enable) -> object:
    return OmegaConf.create(
        {"reward": {"reward_manager": reward_manager, "reward_model": {"enable": enable, "model_path": "m"}}}
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (_reward("dupo", True), r"reward\.reward_manager must be a mapping of settings .*got str 'dupo'"),
        (_reward({"name": "dupo"}, "false"), r"reward\.reward_model\.enable must be true or false .*got str"),
        (_reward({"name": "dupo"}, "true"), r"reward\.reward_model\.enable must be true or false"),
        (OmegaConf.create({"reward": {"reward_model": 5}}), r"reward\.reward_model must be a mapping"),
        (OmegaConf.create({"reward": "dupo"}), r"reward must be a mapping"),
        (_reward({"name": "naive"}, True), r"needs the frozen judge"),
        (_reward({"name": "dupo"}, False), r"needs the frozen judge"),
    ],
    ids=repr,
)
def test_anchored_settings_of_the_wrong_type_are_named(config, message):
    with pytest.raises(ValueError, match=message) as info:
        require_anchor(config)
    assert "\n" not in str(info.value)


def test_anchored_settings_that_name_the_frozen_judge_pass():
    require_anchor(_reward({"name": "dupo"}, True))
