"""Dual accuracy of a set of answers on a set of dual questions, through training's `judge_dual`.

Filter and rerank both need the table answer x question -> accuracy of K dual samples. Every cell
goes through `dupo_verl.scoring.judge_dual` (the same prompts and scoring as training); cells
whose answer gives the hidden value away are not asked (training skips them too) and cells whose
generation failed after retries are marked failed rather than scored 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from dupo_verl.scoring import DualOptions, GenerateFn, judge_dual, leaks_safely
from dupo_verl.task_calls import run_task_code
from dupo_verl.tasks import DualQuestion, DualTask


@dataclass(frozen=True)
class Cell:
    """One (answer, dual question) judgement."""

    accuracy: float | None  # None when leaked or failed
    leaked: bool = False
    failed: bool = False
    samples: int = 0
    tokens: int = 0
    attempts_failed: int = 0


async def dual_table(
    task: DualTask,
    duals: Sequence[DualQuestion],
    answers: Sequence[str],
    generate: GenerateFn,
    options: DualOptions,
    session_prefix: str,
) -> list[list[Cell]]:
    """`table[a][q]` for every answer `a` and dual question `q`, all asked concurrently."""

    async def cell(a: int, q: int) -> Cell:
        answer, dual = answers[a], duals[q]
        try:
            leaked = await run_task_code(
                task.name, "leaks", lambda: leaks_safely(task, dual, answer), options.task_timeout_s)
        except Exception:  # timed out, or raised past `leaks_safely` (SystemExit): no verdict on the cell
            return Cell(accuracy=None, failed=True, attempts_failed=1)
        if leaked:
            return Cell(accuracy=None, leaked=True)
        judgement = await judge_dual(task, dual, answer, generate, options, f"{session_prefix}/a{a}/q{q}")
        if judgement.failed:  # every attempt failed, or the dual prompt could not be built
            return Cell(accuracy=None, failed=True, attempts_failed=judgement.errors)
        return Cell(
            accuracy=judgement.accuracy,
            samples=len(judgement.scores),
            tokens=judgement.tokens,
            attempts_failed=judgement.errors,
        )

    flat = await asyncio.gather(*(cell(a, q) for a in range(len(answers)) for q in range(len(duals))))
    width = len(duals)
    return [list(flat[a * width : (a + 1) * width]) for a in range(len(answers))]


def mean_accuracy(cells: Sequence[Cell]) -> float | None:
    """Mean over the cells that were judged; None when none was."""
    values = [c.accuracy for c in cells if c.accuracy is not None]
    return sum(values) / len(values) if values else None
