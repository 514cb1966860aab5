"""Fixtures for the verl-glue tests (helpers and the test task live in `verl_helpers`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from verl_helpers import TinyLM


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_path: Path) -> TinyLM:
    return TinyLM(tiny_model_path)


@pytest.fixture(scope="session")
def agent_loop_yaml() -> Path:
    from dupo_verl.cli.agent_loop_config import CONFIG_PATH

    return CONFIG_PATH
