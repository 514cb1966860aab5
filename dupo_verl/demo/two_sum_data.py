"""The demo's data: `dupo-verl prepare two-sum` output, turned into one training file per method.

- `prepare_problems` runs the real `dupo-verl prepare two-sum` (train rows plus a held-out split).
- `method_rows` makes the training rows of a method: `dupo` and `shuffled` get a WRONG label
  planted in `reward_model.ground_truth` (if any gold reached their reward, it would pay for wrong
  answers), and so does the `dupo_frozen` remedy; `oracle` keeps the gold label and is scored by
  `reward_fns.compute_score`. `dupo_alternate` gets the `dupo` rows plus one `two_sum_inverse` row
  per problem (`inverse_row`: the dual prompt A+V=S V= as a primal, a wrong B planted), shuffled in.
  `dupo_ensemble` gets the `dupo` rows with two dual questions each (hide B, and hide A asked as
  B+V=S), judged by the live policy; its reward needs both (`dupo.dual_aggregate=min`);
  `dupo_ensemble_anchored` gets the same rows, and so does `dupo_frozen_ensemble` (on
  `single_turn_agent`: its frozen judge is the reward manager). `dupo_likelihood` and `dupo_anchored` get `dupo`'s.
- `validation_rows` makes the held-out primal rows and dual rows (the dual prompt built from the
  true sum, expected reply B), both answered by `single_turn_agent` (by `dupo_agent` for the
  anchored judges, whose reward manager needs a live verdict on every row) and scored against true
  labels: verl's own greedy validation gives the accuracy curves.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dupo_verl.data.readers import RawRecord
from dupo_verl.data.rows import RowOptions, build_row, task_params
from dupo_verl.demo.examples import problem_from_row
from dupo_verl.demo.ppo import METHOD_AGENTS
from dupo_verl.plain import to_plain
from dupo_verl.scoring import task_from_info
from dupo_verl.tasks import get_task
from dupo_verl.tasks.inputs import data_source

PRIMAL_SOURCE = "two_sum/primal"
DUAL_SOURCE = "two_sum/dual"
VALIDATION_AGENT = "single_turn_agent"
ALTERNATE = "dupo_alternate"
ENSEMBLE = "dupo_ensemble"
ENSEMBLE_ROWS = (ENSEMBLE, "dupo_ensemble_anchored", "dupo_frozen_ensemble")  # trained on the ensemble's rows
INVERSE_TASK = "two_sum_inverse"
_PRIMAL_PROMPT = re.compile(r"(\d+)\+(\d+)=")


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
            "--overwrite",  # the demo's own data folder, made again by every --resume / --collect
        ]
    )
    val = train.with_name(f"{train.stem}_val.parquet")
    if code != 0 or not train.exists() or not val.exists():
        raise RuntimeError(f"`dupo-verl prepare two-sum` failed (exit {code}); see its message above")
    return train, val


def read_rows(parquet: Path) -> list[dict[str, Any]]:
    import pandas as pd

    return [to_plain(r) for r in pd.read_parquet(parquet).to_dict(orient="records")]


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
    if method == ALTERNATE:
        return alternate_rows(rows, seed)
    if method in ENSEMBLE_ROWS:
        return ensemble_rows(rows, seed, method)
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


def alternate_rows(rows: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """`dupo`'s rows and one inverse row per problem, each with a wrong label, shuffled together."""
    rng = random.Random(f"wrong_labels_inverse:{seed}")
    out = method_rows(rows, "dupo", seed) + [inverse_row(row, i, rng) for i, row in enumerate(rows)]
    random.Random(f"alternate:{seed}").shuffle(out)
    return out


def ensemble_rows(rows: Sequence[dict[str, Any]], seed: int = 0, method: str = ENSEMBLE) -> list[dict[str, Any]]:
    """`dupo`'s rows (same order, same planted labels) with two dual questions: hide B and hide A,
    on `method`'s agent loop (the frozen ensemble's rows are judged by the reward manager alone).

    The task params become `hide="both"`, as `dupo-verl prepare two-sum --hide both` writes them.
    """
    operands = [_operands(row, i) for i, row in enumerate(rows)]
    out = method_rows(rows, "dupo", seed)
    for row in out:
        row["agent_name"] = METHOD_AGENTS[method]
    tasks: dict[bool, Any] = {}  # one task per `strict` value, not one per row
    for row, (a, b) in zip(out, operands, strict=True):
        forward, _ = task_from_info(row["extra_info"]["dupo"])
        strict = bool(forward.params.get("strict", False))
        if strict not in tasks:
            tasks[strict] = get_task("two_sum", strict=strict, hide="both")
        task = tasks[strict]
        duals = task.decompose({"a": a, "b": b}).duals
        row["extra_info"]["dupo"] = {"task": task.name, "params": task_params(task),
                                     "duals": [d.to_dict() for d in duals]}
    return out


def _operands(row: Mapping[str, Any], index: int) -> tuple[int, int]:
    """(A, B) of a prepared two-sum row, checked against its gold label."""
    gold = str((row.get("reward_model") or {}).get("ground_truth") or "").strip()
    content = str(row["prompt"][-1]["content"]) if row.get("prompt") else ""
    match = _PRIMAL_PROMPT.fullmatch(content)
    if match is None or not gold.isdigit() or int(match[1]) + int(match[2]) != int(gold):
        raise ValueError(f"row {index}: expected a two-sum prompt A+B= with its sum as the label, "
                         f"got {content!r} / {gold!r}")
    return int(match[1]), int(match[2])


def inverse_row(row: Mapping[str, Any], index: int, rng: random.Random) -> dict[str, Any]:
    """The `two_sum_inverse` row of a prepared two-sum row, as `dupo-verl prepare` writes it.

    Its prompt is the dual prompt with the TRUE sum S = A + B (the inverse task's input, not a
    label); B, its answer, is replaced by a planted wrong value in `reward_model.ground_truth`.
    """
    a, b = _operands(row, index)
    forward, _ = task_from_info(row["extra_info"]["dupo"])
    task = get_task(INVERSE_TASK, strict=forward.params.get("strict", False))
    info = row["extra_info"]
    raw = RawRecord(int(info.get("index", index)), {"a": a, "s": a + b, "id": f"{a}+V={a + b}"})
    options = RowOptions(data_source=data_source(task, INVERSE_TASK), agent_name=METHOD_AGENTS[ALTERNATE])
    outcome = build_row(task, raw, options)
    if outcome.row is None:
        raise ValueError(f"row {index}: no {INVERSE_TASK} row ({outcome.message})")
    new = outcome.row
    new["extra_info"]["split"] = info.get("split", "train")
    new["reward_model"] = {**new["reward_model"], "ground_truth": wrong_label(str(b), rng)}
    return new


def validation_rows(
    rows: Sequence[dict[str, Any]], agent: str = VALIDATION_AGENT
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(held-out primal rows, held-out dual rows), greedy-scored against true labels by verl."""
    primal, dual = [], []
    for i, row in enumerate(rows):
        gold = str((row.get("reward_model") or {}).get("ground_truth") or "").strip()
        problem = problem_from_row(row, gold, i)
        base = {k: copy.deepcopy(v) for k, v in row.items() if k not in ("prompt", "reward_model", "data_source")}
        base["agent_name"] = agent
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
