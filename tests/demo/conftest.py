"""Fixtures of the two-sum demo's unit tests: real `dupo-verl prepare two-sum` rows, a tiny model."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from dupo_verl.demo.examples import read_problems
from dupo_verl.demo.two_sum_data import prepare_problems


@pytest.fixture(scope="session")
def two_sum_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(train, held-out) parquet written by the real `dupo-verl prepare two-sum` (operands 0..19)."""
    out = tmp_path_factory.mktemp("two_sum")
    return prepare_problems(out, num_problems=300, val_problems=60, operand_min=0, operand_max=19, seed=3)


@pytest.fixture(scope="session")
def two_sum_problems(two_sum_files):
    train, heldout = two_sum_files
    return read_problems(train), read_problems(heldout)


@pytest.fixture(scope="session")
def digit_model(tmp_path_factory: pytest.TempPathFactory, two_sum_problems) -> Path:
    """A random tiny Qwen2 with a digit-splitting tokenizer trained on the two-sum prompts."""
    from dupo_verl.demo.tiny_lm import build_tiny_lm

    train, _ = two_sum_problems
    corpus = [p.primal.messages[-1]["content"] + p.primal.target for p in train]
    corpus += [d.messages[-1]["content"] + d.target for p in train for d in p.duals]
    return build_tiny_lm(
        tmp_path_factory.mktemp("digit_lm"), corpus=corpus, vocab_size=300, hidden_size=64, num_layers=1,
        num_heads=2, max_position_embeddings=128, split_digits=True, seed=1,
    )


@pytest.fixture
def save_warm_start():
    """Writes what a finished warm start leaves in `<seed_dir>/warm_start` for `config` and `seed`."""
    return _save_warm_start


def _save_warm_start(seed_dir: Path, config, seed: int) -> None:
    folder = seed_dir / "warm_start"
    folder.mkdir(parents=True)
    saved = {"model_dir": str(folder), "steps": 7, "wall_s": 1.5, "dev_primal": 0.3, "dev_dual": 0.8,
             "stopped_because": "primal_target", "log": [], "config": asdict(replace(config.warm, seed=seed))}
    (folder / "warm_start.json").write_text(json.dumps(saved))
    (folder / "model_config.json").write_text(json.dumps(asdict(config.model)))
