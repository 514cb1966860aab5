"""The test suite's hypothesis profile: no property test fails on a wall-clock deadline."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st


def test_the_default_profile_has_no_deadline():
    assert settings.default.deadline is None


@given(st.integers())
def test_a_slow_example_is_not_a_failure(value):
    """Each example sleeps past hypothesis's stock 200 ms deadline only on the first call."""
    import time

    if not getattr(test_a_slow_example_is_not_a_failure, "slept", False):
        test_a_slow_example_is_not_a_failure.slept = True
        time.sleep(0.25)
    assert isinstance(value, int)
