"""Inference-time reranking by dual accuracy (the paper's +9.3 points on AIME, no training).

Per problem: n candidate solutions (sampled, or read from a file), each scored by the dual's
accuracy over the problem's dual questions (K samples each, through training's `judge_answer`);
the best wins, ties broken by the answer's vote count, then by candidate order. Candidates with the
same final answer share that answer's dual work. With a gold answer the row also records whether
the first candidate, the majority answer, the DuPO choice and any candidate (pass@n) were right; a
failed or invalid row records no such verdict (a request that timed out says nothing about the answer).
A row whose every dual request failed is failed too: its choice would be the vote count alone, not DuPO.
A gold value that is no answer (NaN, a list, an object) leaves the row unlabelled, with the reason.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dupo_verl.data.rows import check_keys, example_from_record
from dupo_verl.offline.answers import AnswerGroup, answer_matcher, extract_answers, group_answers
from dupo_verl.offline.dual_eval import dual_table, mean_accuracy
from dupo_verl.offline.io import read_rows, row_digest, row_id
from dupo_verl.offline.pipeline import RETRY_STATUSES
from dupo_verl.offline.primal import PrimalSampling, sample_candidates
from dupo_verl.offline.rows import chat_messages, dupo_info
from dupo_verl.scoring import DualOptions, GenerateFn, task_from_info
from dupo_verl.tasks import DualQuestion, DualTask, get_task
from dupo_verl.tasks.inputs import input_fields
from dupo_verl.tasks.registry import task_class
from reward_fns.math import verify_tally
from reward_fns.scoring import gold_answers

# The selection methods every graded row reports under "correct" (`dupo-verl report` reads them).
METHODS = ("first", "majority", "dupo", "pass_at_n")


@dataclass(frozen=True)
class RerankSettings:
    sampling: PrimalSampling = field(default_factory=lambda: PrimalSampling(n=16, temperature=0.8))
    dual: DualOptions = field(default_factory=lambda: DualOptions(dual_samples=8))
    max_duals: int | None = None  # dual questions used per problem (None: all)
    share_answers: bool = True  # False only to measure what sharing saves


@dataclass(frozen=True)
class RerankJob:
    index: int
    id: str
    task: DualTask | None = None
    duals: tuple[DualQuestion, ...] = ()
    messages: tuple[Mapping[str, str], ...] = ()
    gold: str | None = None
    gold_problem: str | None = None  # why the row's gold value is no label (the row is then unlabelled)
    responses: tuple[str, ...] | None = None  # given candidates (--candidates FILE)
    error: str | None = None  # the row could not be read; written as invalid
    digest: str = ""  # short hash of the input row (`io.row_digest`), checked by --resume


def select_candidate(accuracies: Sequence[float | None], votes: Sequence[int]) -> int | None:
    """Index of the winning candidate: highest dual accuracy, then most votes, then first.

    Candidates without an answer have 0 votes and are never chosen; an answer that could not be
    judged (accuracy None) ranks below every judged one. None when no candidate has an answer.

    >>> select_candidate([0.5, 1.0, 1.0, None], [2, 1, 2, 0])
    2
    >>> select_candidate([None, None], [0, 0]) is None
    True
    """
    best: int | None = None
    best_key: tuple[float, int] | None = None
    for i, (acc, vote) in enumerate(zip(accuracies, votes, strict=True)):
        if vote <= 0:
            continue
        key = (-1.0 if acc is None else acc, vote)
        if best_key is None or key > best_key:  # strict: an earlier candidate wins a full tie
            best, best_key = i, key
    return best


def majority_group(groups: Sequence[AnswerGroup]) -> int | None:
    """Index of the most voted group; ties go to the answer that appeared first."""
    if not groups:
        return None
    return max(range(len(groups)), key=lambda g: (groups[g].votes, -groups[g].first))


async def rerank_row(job: RerankJob, generate: GenerateFn, settings: RerankSettings) -> dict[str, Any]:
    """`_rerank_row_uncounted`, plus the math checks of this row that ended without a verdict.

    A timed-out equality check groups or scores as "different" (never a silent match); how many
    there were is kept in `generations["verify_timeouts"]` so a busy machine's effect is visible.
    """
    with verify_tally() as tally:
        row = await _rerank_row_uncounted(job, generate, settings)
    if "generations" in row:
        row["generations"] = {**row["generations"], "verify_timeouts": tally.timeouts}
    return row


async def _rerank_row_uncounted(job: RerankJob, generate: GenerateFn, settings: RerankSettings) -> dict[str, Any]:
    """One output row of `dupo-verl rerank`."""
    row: dict[str, Any] = {"index": job.index, "id": job.id}
    if job.gold is not None:
        row["gold"] = job.gold
    if job.gold_problem is not None:
        row["gold_unusable"] = job.gold_problem
    if job.error is not None or job.task is None:
        return {
            **row,
            "status": "invalid",
            "error": job.error,
            "chosen_answer": None,
            "candidates": [],
        }
    task, options = job.task, settings.dual
    generations = {
        "primal_samples": 0,
        "dual_requests": 0,
        "dual_samples": 0,
        "failed_requests": 0,
        "tokens": 0,
    }
    if job.responses is not None:
        responses = list(job.responses)
    else:
        primal = await sample_candidates(
            [dict(m) for m in job.messages],
            generate,
            settings.sampling,
            f"{job.id}/primal",
            options.max_retries,
        )
        generations["failed_requests"] += primal.failed_attempts
        if primal.error is not None:
            return {
                **row,
                "status": "failed",
                "error": primal.error,
                "chosen_answer": None,
                "candidates": [],
                "generations": generations,
            }
        responses = [c.text for c in primal.completions]
        generations["primal_samples"] = len(responses)
        generations["tokens"] += sum(c.num_tokens for c in primal.completions)

    answers = extract_answers(task, responses, options.max_answer_chars or task.max_answer_chars)
    groups = await asyncio.to_thread(group_answers, answers, answer_matcher(task))
    group_of = {m: g for g, group in enumerate(groups) for m in group.members}
    votes = [groups[group_of[i]].votes if i in group_of else 0 for i in range(len(responses))]
    duals = list(job.duals)

    # Dual work: once per distinct answer (shared), or once per answered candidate (baseline).
    units = [g.answer for g in groups] if settings.share_answers else [a for a in answers if a is not None]
    prefix = f"{job.id}/dual" if settings.share_answers else f"{job.id}/dual-unshared"
    table = await dual_table(task, duals, units, generate, options, prefix) if duals else [[] for _ in units]
    unit_acc = [mean_accuracy(cells) for cells in table]
    if settings.share_answers:
        accuracies = [unit_acc[group_of[i]] if i in group_of else None for i in range(len(responses))]
    else:
        answered = iter(unit_acc)
        accuracies = [next(answered) if a is not None else None for a in answers]
    cells = [c for unit in table for c in unit]
    generations["dual_requests"] = sum(
        c.attempts_failed + (0 if c.failed else 1) for c in cells if not c.leaked
    )
    generations["dual_samples"] = sum(c.samples for c in cells)
    generations["failed_requests"] += sum(c.attempts_failed for c in cells)
    generations["tokens"] += sum(c.tokens for c in cells)
    failed_cells = sum(c.failed for c in cells)
    candidates = [
        {"answer": a, "dual_accuracy": None if acc is None else round(acc, 6)}
        for a, acc in zip(answers, accuracies, strict=True)
    ]
    if failed_cells and all(c.accuracy is None for c in cells):
        return {
            **row,
            "status": "failed",
            "error": _no_dual_verdict(failed_cells, len(cells)),
            "chosen_answer": None,
            "candidates": candidates,
            "failed_dual_questions": failed_cells,
            "generations": generations,
        }

    chosen = select_candidate(accuracies, votes)
    majority = majority_group(groups)
    row.update(
        status="ok",
        chosen_answer=answers[chosen] if chosen is not None else None,
        chosen_index=chosen,
        majority_answer=groups[majority].answer if majority is not None else None,
        num_duals=len(duals),
        candidates=candidates,
        failed_dual_questions=failed_cells,
        generations=generations,
    )
    if job.gold is not None:
        right = await asyncio.to_thread(_group_correct, task, groups, responses, job.gold)
        for i, candidate in enumerate(candidates):
            candidate["correct"] = bool(i in group_of and right[group_of[i]])
        row["correct"] = {
            "first": candidates[0]["correct"] if candidates else False,
            "majority": bool(majority is not None and right[majority]),
            "dupo": bool(chosen is not None and candidates[chosen]["correct"]),
            "pass_at_n": any(c["correct"] for c in candidates),
        }
    return row


def _no_dual_verdict(failed: int, cells: int) -> str:
    """The error of a row whose dual requests all failed: without one dual verdict the choice
    would be the majority vote, so it is no DuPO result."""
    leaked = cells - failed
    return (
        f"no dual question was answered: {failed} (answer, question) request(s) failed after retries "
        f"(timeouts or errors; see --dual-timeout-s, --max-retries)"
        + (f", {leaked} gave the value away" if leaked else "")
    )


def duals_all_failed(row: Mapping[str, Any]) -> bool:
    """Whether an `ok` row of an older output had no dual verdict at all (every dual request failed):
    its choice is the vote count, not DuPO, so `report` counts it as failed and `--resume` redoes it."""
    candidates = row.get("candidates")
    return (
        row.get("status") == "ok"
        and isinstance(row.get("failed_dual_questions"), int)
        and row["failed_dual_questions"] > 0
        and isinstance(candidates, list)
        and all(not isinstance(c, Mapping) or c.get("dual_accuracy") is None for c in candidates)
    )


def needs_redo(row: Mapping[str, Any]) -> bool:
    """A row with no result: failed, invalid, or an older `ok` row without any dual verdict. `report`
    counts it as failed (never graded) and `--resume` redoes it."""
    return row.get("status") in RETRY_STATUSES or duals_all_failed(row)


def _group_correct(
    task: DualTask, groups: Sequence[AnswerGroup], responses: Sequence[str], gold: str
) -> list[bool]:
    """Gold verdict per distinct answer (from its first candidate), so members always agree."""
    verdicts = []
    for group in groups:
        try:
            score = task.gold_score(responses[group.first], gold)
        except Exception:
            score = None
        verdicts.append(bool(score is not None and score >= 0.5))
    return verdicts


@dataclass(frozen=True)
class RerankInput:
    """How raw problem rows are read (prepared rows carry their own task and prompts)."""

    task: str = "math"
    task_params: Mapping[str, Any] = field(default_factory=dict)
    problem_key: str = "problem"
    answer_key: str = "answer"
    fields: Mapping[str, str] = field(default_factory=dict)  # task input field -> column (`--field`)
    id_key: str = "id"
    seed: int = 0
    max_duals: int | None = None


def build_jobs(
    rows: Sequence[Mapping[str, Any]],
    spec: RerankInput,
    candidates: Mapping[str, Sequence[str]] | None = None,
) -> list[RerankJob]:
    """One job per input row; a row that cannot be read becomes an invalid job, not a crash."""
    idents = [row_id(row, index, spec.id_key) for index, row in enumerate(rows)]
    duplicated = sorted(i for i, count in Counter(idents).items() if count > 1)  # linear: 40k rows in ms
    if duplicated:
        raise ValueError(
            f"input ids must be unique (they key --resume and --candidates); repeated: {duplicated[:5]}"
        )
    if candidates is not None:
        missing = [i for i in idents if i not in candidates]
        if missing:
            raise ValueError(
                f"--candidates has no responses for {len(missing)} input id(s), e.g. {missing[:5]}"
            )
    raw_task: DualTask | None = None
    keys: dict[str, str] = {}
    if any(not _is_prepared(row) for row in rows):  # a bad --task or parameter fails here, once
        raw_task = _raw_task(spec)
        keys = raw_keys(raw_task, spec)
    jobs = []
    for index, (row, ident) in enumerate(zip(rows, idents, strict=True)):
        try:
            if _is_prepared(row):
                task, duals = task_from_info(dupo_info(row))
                messages = chat_messages(row)
                reward = row.get("reward_model")
                gold = reward.get("ground_truth") if isinstance(reward, Mapping) else None
                gold_field = "reward_model.ground_truth"
            else:
                assert raw_task is not None
                task = raw_task
                duals, messages, gold = _decompose_raw(task, row, index, keys, spec)
                gold_field = spec.answer_key
            responses = None
            if candidates is not None:
                responses = tuple(candidates[ident])
            gold, gold_problem = read_gold(gold, gold_field)
            duals = duals[: spec.max_duals] if spec.max_duals is not None else duals
            jobs.append(
                RerankJob(
                    index=index,
                    id=ident,
                    task=task,
                    duals=tuple(duals),
                    messages=tuple(messages),
                    gold=gold,
                    gold_problem=gold_problem,
                    responses=responses,
                    digest=row_digest(row),
                )
            )
        except Exception as exc:
            gold, gold_problem = read_gold(row.get(spec.answer_key), spec.answer_key)
            jobs.append(
                RerankJob(
                    index=index,
                    id=ident,
                    gold=gold,
                    gold_problem=gold_problem,
                    error=f"row {index} (id {ident}): {exc}",
                    digest=row_digest(row),
                )
            )
    return jobs


def read_gold(value: Any, field: str) -> tuple[str | None, str | None]:
    """(gold answer, None), (None, None) when the row has none, or (None, why the value is no answer).

    Read as `prepare` and validation read gold labels (`reward_fns.scoring.gold_answers`): NaN, a
    boolean, bytes or an object is no answer, and neither is a list (`prepare` refuses it), whose
    `str` ("['7']") would otherwise be graded.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    answers = [] if isinstance(value, list | tuple) else gold_answers(value)
    if answers:
        return answers[0], None
    return None, f"field {field!r} is {type(value).__name__} {value!r:.40}, not a gold answer (text or a finite number)"


def _raw_task(spec: RerankInput) -> DualTask:
    """The task for raw rows; a missing or unknown parameter names `--task-params` and what it needs."""
    try:
        return get_task(spec.task, **dict(spec.task_params))
    except TypeError as exc:
        needed = [
            name
            for name, p in inspect.signature(task_class(spec.task)).parameters.items()
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        given = json.dumps(dict(spec.task_params), default=str)
        raise ValueError(
            f"--task {spec.task} cannot be built from --task-params {given} ({exc}); "
            f"it needs --task-params with {', '.join(needed) or 'valid parameters'}"
        ) from None


def _is_prepared(row: Mapping[str, Any]) -> bool:
    return isinstance(row.get("extra_info"), Mapping) and "dupo" in row["extra_info"]


def raw_keys(task: DualTask, spec: RerankInput) -> dict[str, str]:
    """Task input field -> column for raw rows: `--field`s, and `--problem-key` for a task with a
    `problem` field (as `prepare --key` / `--problem-key`); checked against the task's fields."""
    keys = dict(spec.fields)
    fields = input_fields(task)
    if spec.problem_key != "problem" and "problem" not in keys:
        if fields is not None and "problem" not in fields:
            raise ValueError(
                f"task {task.name!r} has no 'problem' field (fields: {sorted(fields)}); use --field FIELD=COLUMN"
            )
        keys["problem"] = spec.problem_key
    if fields is None and keys:
        if set(keys) - {"problem"}:
            raise ValueError(f"task {task.name!r} reads raw rows as they are; it takes no --field")
        return keys
    check_keys(task, keys)
    return keys


def _decompose_raw(
    task: DualTask, row: Mapping[str, Any], index: int, keys: Mapping[str, str], spec: RerankInput
) -> tuple[list[DualQuestion], list, Any]:
    # The gold answer never reaches the decomposition: which questions exist must not depend on it.
    record = {k: v for k, v in row.items() if k != spec.answer_key}
    if input_fields(task) is None:  # a task reading raw rows as they are (with a renamed problem)
        example = dict(record)
        if "problem" in keys:
            if not isinstance(row.get(keys["problem"]), str):
                raise ValueError(f"field {keys['problem']!r} is missing or not text")
            example["problem"] = row[keys["problem"]]
    else:
        example, _ = example_from_record(task, record, index, keys)
    found = task.decompose(example, seed=spec.seed).duals  # may be lazy (math): cap before reading
    duals = list(found[: spec.max_duals] if spec.max_duals is not None else found)
    return duals, task.primal_messages(example), row.get(spec.answer_key)


def read_candidates(path: str | Path) -> dict[str, list[str]]:
    """`--candidates FILE`: jsonl rows `{"id": ..., "responses": [text, ...]}` (or `"candidates"`)."""
    table: dict[str, list[str]] = {}
    for lineno, row in enumerate(read_rows(path), 1):
        if "id" not in row:
            raise ValueError(f"{path}: row {lineno} has no 'id'")
        responses = row.get("responses", row.get("candidates"))
        if not isinstance(responses, list) or not responses or not all(isinstance(r, str) for r in responses):
            raise ValueError(
                f"{path}: row {lineno} (id {row['id']}) needs 'responses': a non-empty list of strings"
            )
        if str(row["id"]) in table:
            raise ValueError(f"{path}: id {row['id']!r} appears twice")
        table[str(row["id"])] = responses
    return table
