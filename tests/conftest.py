"""Shared fixtures: the real shared data folder and one tiny real model per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# Tests never assert wall times: a property test's example may take longer than hypothesis's
# default 200 ms deadline when CI shares the cores with training runs (seen: 396 ms, reported as a
# FlakyFailure of a pure function). Every hypothesis test runs without a deadline.
settings.register_profile("dupo", deadline=None)
settings.load_profile("dupo")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the repository (real GSM8K, MATH-500, AIME, AMC, FLORES)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Qwen2 model with a locally trained tokenizer, built once per session."""
    from dupo_verl.demo.tiny_lm import build_tiny_lm

    return build_tiny_lm(tmp_path_factory.mktemp("tiny_lm"))
