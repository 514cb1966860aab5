"""The demo's data: `dupo-verl prepare two-sum` output, turned into one training file per method.

- `prepare_problems` runs the real `dupo-verl prepare two-sum` (train rows plus a held-out split).
- `method_rows` makes the training rows of a method: `dupo` and `shuffled` get a WRONG label
  planted in `reward_model.ground_truth` (if any gold reached their reward, it would pay for wrong
  answers), and so does the `dupo_frozen` remedy; `oracle` keeps the gold label and is scored by
  `reward_fns.compute_score`.
- `validation_rows` makes the held-out primal rows and dual rows (the dual prompt built from the
  true sum, expected reply B), both answered by `single_turn_agent` and scored against true labels:
  verl's own greedy validation gives the accuracy curves.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dupo_verl.demo.examples import plain, problem_from_row
from dupo_verl.demo.ppo import METHOD_AGENTS

PRIMAL_SOURCE = "two_sum/primal"
DUAL_SOURCE = "two_sum/dual"
VALIDATION_AGENT = "single_turn_agent"


def prepare_problems(
    out_dir: Path, num_problems: int, val_problems: int, operand_min: int, operand_max: int, seed: int = 0
) -> tuple[Path, Path]:
    """Run `dupo-verl prepare two-sum`; return (train parquet, held-out parquet)."""
    from dupo_verl.cli import main

    if not 0 < val_problems < num_problems:
        raise ValueError(f"val_problems must be in 1..{num_problems - 1}, got {val_problems}")
    train = out_dir / "two_sum.parquet"
    code = main(
        [
            "prepare", "two-sum", "--output", str(train), "--num-problems", str(num_problems),
            "--operand-min", str(operand_min), "--operand-max", str(operand_max), "--seed", str(seed),
            "--val-fraction", repr(val_problems / num_problems), "--no-progress",
        ]
    )
    val = train.with_name(f"{train.stem}_val.parquet")
    if code != 0 or not train.exists() or not val.exists():
        raise RuntimeError(f"`dupo-verl prepare two-sum` failed (exit {code}); see its message above")
    return train, val


def read_rows(parquet: Path) -> list[dict[str, Any]]:
    import pandas as pd

    return [plain(r) for r in pd.read_parquet(parquet).to_dict(orient="records")]


def write_rows(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    import pandas as pd

    if not rows:
        raise ValueError(f"no rows to write to {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(list(rows)).to_parquet(path, index=False)
    return path


def wrong_label(gold: str, rng: random.Random) -> str:
    """An integer label that is never the gold one (gold + a non-zero offset, kept >= 0)."""
    value = int(gold)
    offset = rng.choice([d for d in range(-9, 10) if d and value + d >= 0])
    return str(value + offset)


def method_rows(rows: Sequence[dict[str, Any]], method: str, seed: int = 0) -> list[dict[str, Any]]:
    """Training rows of `method`: its agent loop; planted wrong labels unless it is the oracle."""
    if method not in METHOD_AGENTS:
        raise ValueError(f"unknown method {method!r}; RL methods: {sorted(METHOD_AGENTS)}")
    rng = random.Random(f"wrong_labels:{seed}")
    out = []
    for i, row in enumerate(rows):
        new = copy.deepcopy(row)
        gold = str((row.get("reward_model") or {}).get("ground_truth") or "").strip()
        if not gold.lstrip("-").isdigit():
            raise ValueError(f"row {i}: reward_model.ground_truth must be the integer sum, got {gold!r}")
        new["agent_name"] = METHOD_AGENTS[method]
        if method != "oracle":
            new["reward_model"] = {**new["reward_model"], "ground_truth": wrong_label(gold, rng)}
        out.append(new)
    return out


def validation_rows(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(held-out primal rows, held-out dual rows), greedy-scored against true labels by verl."""
    primal, dual = [], []
    for i, row in enumerate(rows):
        gold = str((row.get("reward_model") or {}).get("ground_truth") or "").strip()
        problem = problem_from_row(row, gold, i)
        base = {k: copy.deepcopy(v) for k, v in row.items() if k not in ("prompt", "reward_model", "data_source")}
        base["agent_name"] = VALIDATION_AGENT
        primal.append(
            {**copy.deepcopy(base), "data_source": PRIMAL_SOURCE, "prompt": problem.primal.messages,
             "reward_model": {"style": "rule", "ground_truth": gold}}
        )
        for ex in problem.duals[:1]:
            dual.append(
                {**copy.deepcopy(base), "data_source": DUAL_SOURCE, "prompt": ex.messages,
                 "reward_model": {"style": "rule", "ground_truth": ex.target}}
            )
    return primal, dual
