"""Supervised examples of both roles (primal and dual) read from `dupo-verl prepare` parquet rows.

The demo warm-starts and evaluates the tiny model on exactly the prompts verl will later show it:
the primal prompt is the row's `prompt`, the dual prompt is the task's `dual_messages` built from
the GOLD primal answer. The gold is only used here (supervised warm start and evaluation), never
by the DuPO training run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dupo_verl.plain import to_plain
from dupo_verl.scoring import task_from_info
from dupo_verl.tasks import DualQuestion, DualTask, Messages

PRIMAL = "primal"
DUAL = "dual"


@dataclass(frozen=True)
class Example:
    """One prompt with its expected reply. `dual` is set for dual examples (scored by the task)."""

    kind: str
    messages: Messages
    target: str
    dual: DualQuestion | None = None


@dataclass(frozen=True)
class Problem:
    """One prepared row: its task, primal example and dual examples."""

    task: DualTask
    primal: Example
    duals: tuple[Example, ...]
    row_index: int


def problem_from_row(row: Mapping[str, Any], gold: str, row_index: int) -> Problem:
    """Build the primal and dual examples of one verl row; `gold` is the true primal answer."""
    info = row.get("extra_info")
    if not isinstance(info, Mapping) or "dupo" not in info:
        raise ValueError(f"row {row_index}: extra_info['dupo'] is missing (not a `dupo-verl prepare` row)")
    task, duals = task_from_info(info["dupo"])
    messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in row["prompt"]]
    if not gold:
        raise ValueError(f"row {row_index}: no gold answer; the warm start needs one")
    primal = Example(PRIMAL, messages, gold)
    dual_examples = tuple(Example(DUAL, task.dual_messages(d, gold), d.value, dual=d) for d in duals)
    return Problem(task=task, primal=primal, duals=dual_examples, row_index=row_index)


def read_problems(parquet: str | Path, gold_column: str = "ground_truth") -> list[Problem]:
    """Problems of a prepared parquet whose `reward_model.<gold_column>` holds the TRUE answer."""
    import pandas as pd

    frame = pd.read_parquet(parquet)
    problems = []
    for i, row in enumerate(frame.to_dict(orient="records")):
        row = to_plain(row)
        reward_model = row.get("reward_model") or {}
        gold = str(reward_model.get(gold_column) or "").strip()
        problems.append(problem_from_row(row, gold, i))
    return problems


def examples_of(problems: Iterable[Problem], kind: str) -> list[Example]:
    """All primal (`kind="primal"`) or all dual (`kind="dual"`) examples of `problems`."""
    if kind not in (PRIMAL, DUAL):
        raise ValueError(f"kind must be {PRIMAL!r} or {DUAL!r}, got {kind!r}")
    out: list[Example] = []
    for p in problems:
        out.extend([p.primal] if kind == PRIMAL else p.duals)
    return out


def score(task: DualTask, example: Example, response: str) -> float:
    """1.0 when `response` answers `example` correctly by the task's own rules (gold for the
    primal, reconstruction of the hidden part for the dual)."""
    if example.kind == DUAL:
        assert example.dual is not None
        return float(task.score_reconstruction(example.dual, response))
    gold = task.gold_score(response, example.target)
    if gold is None:
        answer = task.extract_primal_answer(response)
        return float(answer is not None and answer.strip() == example.target.strip())
    return float(gold)


def task_of(problems: Sequence[Problem]) -> DualTask:
    """The single task shared by `problems` (the demo uses one task per file)."""
    if not problems:
        raise ValueError("no problems")
    names = {p.task.name for p in problems}
    if len(names) != 1:
        raise ValueError(f"expected one task, found {sorted(names)}")
    return problems[0].task
