"""`DualOptions` refuses every value that would turn into a bad reward, naming option and value."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scoring_fixtures import TASK, ScriptedGenerate, duals, scores_reply

from dupo_verl.scoring import DualOptions, score_response
from dupo_verl.tasks import get_task
from dupo_verl.verl.rows import resolve_options

NAN, INF = float("nan"), float("inf")

BAD = [
    ("no_answer_reward", NAN),
    ("no_answer_reward", -5),
    ("no_answer_reward", 7),
    ("no_answer_reward", "0"),
    ("no_answer_reward", INF),
    ("no_answer_reward", True),
    ("no_answer_reward", None),
    ("shaping_lambda", NAN),
    ("shaping_lambda", INF),
    ("shaping_lambda", -1.0),
    ("shaping_lambda", 0.0),  # exp(0) pays 1.0 for every answer: GRPO would get no signal
    ("shaping_lambda", "2"),
    ("dual_top_p", 7),
    ("dual_top_p", 0),
    ("dual_top_p", -0.5),
    ("dual_top_p", NAN),
    ("dual_samples", 2.5),
    ("dual_samples", 2.0),
    ("dual_samples", 0),
    ("dual_samples", True),
    ("dual_samples", "2"),
    ("dual_samples", None),
    ("dual_questions_per_rollout", 1.5),
    ("dual_questions_per_rollout", 0),
    ("dual_questions_per_rollout", False),
    ("max_retries", 1.5),
    ("max_retries", -1),
    ("max_retries", True),
    ("max_retries", NAN),
    ("dual_temperature", -0.1),
    ("dual_temperature", NAN),
    ("dual_temperature", INF),
    ("dual_temperature", "0.6"),
    ("dual_max_tokens", 0),
    ("dual_max_tokens", 16.5),
    ("dual_max_tokens", INF),
    ("hybrid_weight", 1.5),
    ("hybrid_weight", -0.1),
    ("hybrid_weight", NAN),
    ("max_answer_chars", 0),
    ("max_answer_chars", 2.5),
    ("max_answer_chars", True),
    ("max_answer_chars", INF),
    ("dual_aggregate", "avg"),
    ("dual_aggregate", 1),
    ("dual_aggregate", None),
    ("dual_timeout_s", 0),
    ("dual_timeout_s", -1),
    ("dual_timeout_s", INF),
    ("dual_timeout_s", NAN),
    ("dual_timeout_s", 1e12),
    ("dual_timeout_s", "10"),
    ("dual_timeout_s", True),
    # upper bounds: past them a value is a typo that becomes an absurd metric or a blocked event loop
    ("dual_samples", 1025),
    ("dual_samples", 10**30),
    ("dual_questions_per_rollout", 10**9),
    ("dual_max_tokens", 10**30),
    ("max_retries", 101),
    ("max_retries", 10**9),
    ("dual_timeout_s", 1e-300),
    ("dual_timeout_s", 0.0009),
    ("dual_temperature", 1e308),
    ("dual_temperature", 100.5),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_bad_value_is_refused_naming_option_and_value(name, value):
    with pytest.raises(ValueError) as info:
        DualOptions(**{name: value})
    message = str(info.value)
    assert name in message and repr(value) in message
    assert "\n" not in message
    with pytest.raises(ValueError, match=name):
        DualOptions.from_mapping({name: value})


@pytest.mark.parametrize("name", ["dual_samples", "max_retries", "dual_temperature", "dual_timeout_s"])
def test_a_number_past_the_float_range_is_refused_in_one_line(name):
    with pytest.raises(ValueError, match=rf"^DuPO option {name}=1000") as info:
        DualOptions(**{name: 10**400})  # float(10**400) raises OverflowError
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_the_bounds_themselves_are_accepted():
    options = DualOptions(
        dual_samples=1024,
        dual_questions_per_rollout=1024,
        dual_max_tokens=1_048_576,
        max_retries=100,
        dual_timeout_s=0.001,
        dual_temperature=100,
    )
    assert options.dual_samples == 1024 and options.max_retries == 100
    assert options.dual_timeout_s == 0.001 and options.dual_temperature == 100.0


def test_validate_catches_a_value_set_after_construction():
    options = DualOptions()
    object.__setattr__(options, "no_answer_reward", float("nan"))
    with pytest.raises(ValueError, match="no_answer_reward"):
        options.validate()


def test_numbers_are_normalised_to_the_field_type():
    options = DualOptions(
        no_answer_reward=0,
        dual_top_p=1,
        dual_temperature=np.float32(0.5),
        shaping_lambda=2,
        hybrid_weight=np.int64(1),
        dual_samples=np.int64(3),
        dual_timeout_s=30,
    )
    assert type(options.no_answer_reward) is float and options.no_answer_reward == 0.0
    assert type(options.dual_top_p) is float and type(options.shaping_lambda) is float
    assert type(options.dual_temperature) is float and options.dual_temperature == 0.5
    assert type(options.hybrid_weight) is float and type(options.dual_timeout_s) is float
    assert type(options.dual_samples) is int and options.dual_samples == 3
    assert options == DualOptions(
        no_answer_reward=0.0,
        dual_top_p=1.0,
        dual_temperature=0.5,
        shaping_lambda=2.0,
        hybrid_weight=1.0,
        dual_samples=3,
        dual_timeout_s=30.0,
    )


def _hydra_dupo(tmp_path: Path, *overrides: str):
    (tmp_path / "trainer.yaml").write_text("trainer: {}\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base=None):
        return compose("trainer", overrides=list(overrides))


def test_hydra_overrides_yield_accepted_types(tmp_path):
    """What `+dupo.<key>=<text>` on a command line turns into is accepted when it means a valid value."""
    config = _hydra_dupo(
        tmp_path,
        "+dupo.no_answer_reward=0",
        "+dupo.dual_top_p=1",
        "+dupo.dual_temperature=0",
        "+dupo.shaping_lambda=null",
        "+dupo.max_answer_chars=null",
        "+dupo.dual_aggregate=min",
        "+dupo.dual_timeout_s=60",
        "+dupo.max_retries=0",
    )
    options = resolve_options(None, config)
    assert options.no_answer_reward == 0.0 and type(options.no_answer_reward) is float
    assert options.dual_top_p == 1.0 and options.dual_temperature == 0.0
    assert options.shaping_lambda is None and options.max_answer_chars is None
    assert options.dual_aggregate == "min" and options.dual_timeout_s == 60.0 and options.max_retries == 0


@pytest.mark.parametrize(
    ("override", "name"),
    [
        ("+dupo.no_answer_reward='0'", "no_answer_reward"),  # a quoted string stays a string
        ("+dupo.dual_samples=2.5", "dual_samples"),
        ("+dupo.max_retries=true", "max_retries"),
        ("+dupo.shaping_lambda=nan", "shaping_lambda"),
        ("+dupo.dual_timeout_s=inf", "dual_timeout_s"),
        ("+dupo.dual_top_p=7", "dual_top_p"),
    ],
)
def test_hydra_overrides_with_bad_values_are_refused(tmp_path, override, name):
    config = _hydra_dupo(tmp_path, override)
    with pytest.raises(ValueError, match=name):
        resolve_options(None, config)


def test_every_option_has_a_one_sentence_help():
    for f in dataclasses.fields(DualOptions):
        text = f.metadata.get("help")
        assert isinstance(text, str) and text.strip(), f.name
        assert "\n" not in text and text.rstrip().endswith("."), f.name


# ------------------------------------------------------------------ properties

_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.sampled_from(["mean", "min", "0", "1.0", "nan"]),
)


def _holds_invariants(options: DualOptions) -> None:
    for name in ("dual_questions_per_rollout", "dual_samples", "dual_max_tokens"):
        value = getattr(options, name)
        assert type(value) is int and 1 <= value <= (1_048_576 if name == "dual_max_tokens" else 1024)
    assert type(options.max_retries) is int and 0 <= options.max_retries <= 100
    for name in ("dual_temperature", "dual_top_p", "hybrid_weight", "no_answer_reward", "dual_timeout_s"):
        value = getattr(options, name)
        assert type(value) is float and math.isfinite(value)
    assert 0 <= options.dual_temperature <= 100 and 0 < options.dual_top_p <= 1
    assert 0 <= options.hybrid_weight <= 1 and 0 <= options.no_answer_reward <= 1
    assert 0.001 <= options.dual_timeout_s <= 86_400
    assert options.shaping_lambda is None or (
        type(options.shaping_lambda) is float
        and math.isfinite(options.shaping_lambda)
        and options.shaping_lambda >= 0
    )
    assert options.max_answer_chars is None or (
        type(options.max_answer_chars) is int and options.max_answer_chars >= 1
    )
    assert options.dual_aggregate in ("mean", "min")


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from([f.name for f in dataclasses.fields(DualOptions)]),
    value=_ANY,
)
def test_any_single_value_is_refused_or_yields_valid_options(name, value):
    try:
        options = DualOptions(**{name: value})
    except ValueError as exc:
        assert name in str(exc)
        return
    _holds_invariants(options)


_VALID = st.builds(
    DualOptions,
    dual_questions_per_rollout=st.integers(1, 3),
    dual_samples=st.integers(1, 4),
    dual_aggregate=st.sampled_from(["mean", "min"]),
    shaping_lambda=st.one_of(st.none(), st.integers(1, 50), st.floats(0, 1e6, exclude_min=True)),
    hybrid_weight=st.one_of(st.integers(0, 1), st.floats(0, 1)),
    no_answer_reward=st.one_of(st.integers(0, 1), st.floats(0, 1)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    options=_VALID,
    similarities=st.lists(st.floats(0, 1), min_size=0, max_size=4),
    answer=st.sampled_from(["5", "", "LEAK", "x" * 300]),
    gold=st.sampled_from([None, "5", "6"]),
)
async def test_reward_is_finite_and_in_unit_interval(options, similarities, answer, gold):
    _holds_invariants(options)
    generate = ScriptedGenerate(scores_reply(*similarities))
    result = await score_response(get_task(TASK), duals(3), answer, generate, options, "s", gold)
    assert type(result.reward) is float and math.isfinite(result.reward) and 0.0 <= result.reward <= 1.0
    assert result.metrics["dupo_reward"] == result.reward
    assert all(math.isfinite(v) for v in result.metrics.values())
