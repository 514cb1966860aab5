"""The paper's unknown-component selection: keep a dual question only if it is answerable and unique.

For each problem: sample a pool of candidate solutions, take the distinct final answers, have the
dual answer every question once per distinct answer (K samples, through training's `judge_answer`),
and keep a question iff at least one and at most one distinct answer lets the dual recover the
hidden value. A problem left with no question is dropped. No gold label is read.

A question whose dual calls failed (timeouts, backend errors after retries) has no verdict, which is
not the verdict "unanswerable": a row with any such question is recorded `failed`, whatever its other
questions got, so it is counted as failed (never as dropped), left out of the filtered data, and
redone by `--resume`. Keeping it with only its judged questions would silently cut a question that
an outage, not the rule, decided.

Progress is a row-by-row work file (resumable); the filtered data set and the report are written
from it at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dupo_verl.files import OutputError, atomic_write, atomic_write_text, present, refuse_existing, same_file
from dupo_verl.offline.answers import answer_matcher, extract_answers, group_answers
from dupo_verl.offline.dual_eval import Cell, dual_table
from dupo_verl.offline.io import read_rows, row_digest, row_id
from dupo_verl.offline.primal import PrimalSampling, sample_candidates
from dupo_verl.offline.rows import chat_messages, dupo_info
from dupo_verl.scoring import DualOptions, GenerateFn, task_from_info
from reward_fns.math import verify_tally

KEPT, UNANSWERABLE, NOT_UNIQUE, FAILED = "kept", "unanswerable", "not_unique", "failed"
OUTPUT_DIGEST = "output_sha256"  # report field: the output this job wrote, so --resume may rewrite it


@dataclass(frozen=True)
class FilterSettings:
    sampling: PrimalSampling = field(default_factory=lambda: PrimalSampling(n=32, temperature=1.0))
    dual: DualOptions = field(default_factory=DualOptions)
    recover_threshold: float = 0.5  # an answer "recovers" the value if its K-sample accuracy reaches this

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidates": self.sampling.n,
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
            "max_tokens": self.sampling.max_tokens,
            "dual_samples": self.dual.dual_samples,
            "dual_temperature": self.dual.dual_temperature,
            "dual_top_p": self.dual.dual_top_p,
            "dual_max_tokens": self.dual.dual_max_tokens,
            "recover_threshold": self.recover_threshold,
        }


def question_rule(cells: Sequence[Cell], threshold: float = 0.5) -> tuple[str, int]:
    """(rule, number of distinct answers that recover the hidden value) for one dual question.

    >>> question_rule([Cell(1.0), Cell(0.0)])
    ('kept', 1)
    >>> question_rule([Cell(1.0), Cell(1.0)])
    ('not_unique', 2)
    >>> question_rule([])
    ('unanswerable', 0)
    """
    if any(c.failed for c in cells):
        return FAILED, 0
    recovering = sum(1 for c in cells if c.accuracy is not None and c.accuracy >= threshold)
    if recovering == 0:
        return UNANSWERABLE, 0
    return (KEPT if recovering == 1 else NOT_UNIQUE), recovering


@dataclass(frozen=True)
class FilterJob:
    index: int
    id: str
    row: Mapping[str, Any]
    digest: str = ""  # short hash of the input row (`io.row_digest`), checked by --resume


async def filter_row(job: FilterJob, generate: GenerateFn, settings: FilterSettings) -> dict[str, Any]:
    """`_filter_row_uncounted`, plus the math checks of this row that ended without a verdict.

    A timed-out equality check groups or scores as "different" (never a silent match); how many
    there were is kept in `generations["verify_timeouts"]` so a busy machine's effect is visible.
    """
    with verify_tally() as tally:
        row = await _filter_row_uncounted(job, generate, settings)
    if "generations" in row:
        row["generations"] = {**row["generations"], "verify_timeouts": tally.timeouts}
    return row


async def _filter_row_uncounted(job: FilterJob, generate: GenerateFn, settings: FilterSettings) -> dict[str, Any]:
    """The work record of one problem: per-question rule, kept question indices, generation counts."""
    record: dict[str, Any] = {"index": job.index, "id": job.id}
    try:
        task, duals = task_from_info(dupo_info(job.row))
        messages = chat_messages(job.row)
    except Exception as exc:  # counted and reported, never a crash mid-run
        return {**record, "status": "invalid", "error": f"row {job.index} (id {job.id}): {exc}", "kept": []}
    counts = Counter(
        primal_requests=0, primal_samples=0, dual_requests=0, dual_samples=0, failed_requests=0, tokens=0
    )
    if not duals:
        return {
            **record,
            "status": "ok",
            "questions": [],
            "kept": [],
            "answers": [],
            "votes": [],
            "no_answer": 0,
            "generations": dict(counts),
        }
    primal = await sample_candidates(
        messages, generate, settings.sampling, f"{job.id}/primal", settings.dual.max_retries
    )
    counts.update(primal_requests=1 + primal.failed_attempts, failed_requests=primal.failed_attempts)
    if primal.error is not None:
        return {**record, "status": "failed", "error": primal.error, "kept": [], "generations": dict(counts)}
    counts.update(
        primal_samples=len(primal.completions), tokens=sum(c.num_tokens for c in primal.completions)
    )
    answers = extract_answers(
        task, [c.text for c in primal.completions], settings.dual.max_answer_chars or task.max_answer_chars
    )
    groups = await asyncio.to_thread(group_answers, answers, answer_matcher(task))
    table = await dual_table(
        task, duals, [g.answer for g in groups], generate, settings.dual, f"{job.id}/filter"
    )
    questions = []
    for q in range(len(duals)):
        column = [table[a][q] for a in range(len(groups))]
        rule, recovering = question_rule(column, settings.recover_threshold)
        questions.append({"rule": rule, "recovering": recovering, "accuracy": [c.accuracy for c in column]})
    cells = [c for row in table for c in row]
    counts.update(
        dual_requests=sum(c.attempts_failed + (0 if c.failed else 1) for c in cells if not c.leaked),
        dual_samples=sum(c.samples for c in cells),
        failed_requests=sum(c.attempts_failed for c in cells),
        tokens=sum(c.tokens for c in cells),
    )
    return {
        **record,
        **_verdict(questions),
        "questions": questions,
        "answers": [g.answer for g in groups],
        "votes": [g.votes for g in groups],
        "no_answer": sum(a is None for a in answers),
        "leaked_pairs": sum(c.leaked for c in cells),
        "generations": dict(counts),
    }


def _verdict(questions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Status and kept questions of a judged row: `failed` (nothing kept) if any question got no verdict."""
    failed = sum(info["rule"] == FAILED for info in questions)
    if failed:
        error = (
            f"{failed} of {len(questions)} dual questions got no verdict (their dual calls failed after "
            "retries: timeouts or backend errors)"
        )
        return {"status": FAILED, "error": error, "kept": []}
    return {"status": "ok", "kept": [q for q, info in enumerate(questions) if info["rule"] == KEPT]}


def filter_report(
    records: Sequence[Mapping[str, Any]], settings: FilterSettings | None = None
) -> dict[str, Any]:
    """Questions kept and dropped by rule, problems dropped, generation counts.

    Every question of a failed row counts as failed, whatever its own cells said: the row is left
    out and redone by `--resume`, so "kept" matches the questions written.
    """
    rules: Counter = Counter()
    generations: Counter = Counter()
    status: Counter = Counter()
    candidates = no_answer = distinct = leaked = 0
    for record in records:
        status[record["status"]] += 1
        generations.update(record.get("generations", {}))
        for question in record.get("questions", []):
            rules[question["rule"] if record["status"] == "ok" else FAILED] += 1
        if record["status"] == "ok":
            candidates += sum(record.get("votes", [])) + record.get("no_answer", 0)
            no_answer += record.get("no_answer", 0)
            distinct += len(record.get("answers", []))
            leaked += record.get("leaked_pairs", 0)
    kept_problems = sum(1 for r in records if r["status"] == "ok" and r["kept"])
    report = {
        "problems": {
            "in": len(records),
            "kept": kept_problems,
            "dropped_no_question_left": status["ok"] - kept_problems,
            "dropped_failed": status["failed"],
            "dropped_invalid": status["invalid"],
        },
        "questions": {
            "in": sum(rules.values()),
            "kept": rules[KEPT],
            "dropped_unanswerable": rules[UNANSWERABLE],
            "dropped_not_unique": rules[NOT_UNIQUE],
            "dropped_failed": rules[FAILED],
        },
        "candidates": {
            "sampled": candidates,
            "no_answer": no_answer,
            "distinct_answers": distinct,
            "leaked_pairs": leaked,
        },
        "generations": {k: generations[k] for k in sorted(generations)},
        "failed_rows": [
            {"index": r["index"], "id": r["id"], "error": r.get("error")}
            for r in records
            if r["status"] in ("failed", "invalid")
        ],
    }
    if settings is not None:
        report["settings"] = settings.as_dict()
    return report


def write_filtered(
    input_path: Path, output_path: Path, records: Sequence[Mapping[str, Any]], limit: int | None
) -> int:
    """Write the kept rows, same schema, with `extra_info.dupo.duals` cut to the kept questions.

    With no row kept nothing is written (an existing output stays as it was): an empty data set
    would only fail later, far from its cause. Whether an existing output may be replaced at all is
    decided before the run (`refuse_foreign_outputs`). Returns the rows written.
    """
    kept = {r["index"]: r["kept"] for r in records if r["status"] == "ok" and r["kept"]}
    order = sorted(kept)
    if not order:
        return 0
    if input_path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(input_path)
        if limit is not None:
            table = table.slice(0, limit)
        table = table.take(pa.array(order, type=pa.int64()))
        extra = [
            _cut(info, kept[i]) for info, i in zip(table.column("extra_info").to_pylist(), order, strict=True)
        ]
        column = table.schema.get_field_index("extra_info")
        table = table.set_column(
            column, table.schema.field(column), pa.array(extra, type=table.schema.field(column).type)
        )
        atomic_write(output_path, lambda tmp: pq.write_table(table, tmp))
    else:
        rows = read_rows(input_path, limit)
        chosen = [{**rows[i], "extra_info": _cut(rows[i]["extra_info"], kept[i])} for i in order]
        atomic_write_text(output_path, _row_text(chosen, input_path.suffix.lower()))
    return len(order)


def _row_text(rows: Sequence[Mapping[str, Any]], suffix: str) -> str:
    """Rows as the input had them: one JSON object a line (.jsonl) or one JSON list (.json)."""
    if suffix == ".json":
        return json.dumps(list(rows), ensure_ascii=False) + "\n"
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def file_sha256(path: Path) -> str:
    """The digest the report records of the output it wrote (see `refuse_foreign_outputs`)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refuse_foreign_outputs(output: Path, report: Path, work: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse (one `OutputError` naming the file), before any work, to replace a file this job did not write.

    Without --resume an existing file is replaced only with --overwrite. A resumed run rewrites its
    final files from the work file, so it may replace them when they are its own: a report naming
    this work file, and an output whose SHA-256 that report recorded. Anything else is someone
    else's file (or an earlier version's, which recorded no digest) and stays.
    """
    if overwrite:
        return
    if not resume:
        if work.is_file() and work.stat().st_size > 0:  # an empty one holds no row (the writer agrees)
            raise OutputError(f"the work file {work} exists; pass --resume to continue it or --overwrite to replace it")
        refuse_existing({"--output": output, "--report": report},
                        "pass --overwrite to replace it (or --resume if this job wrote it)")
        return
    recorded = _own_report(report, work)
    if present(output) and (
        recorded is None or not output.is_file() or recorded.get(OUTPUT_DIGEST) != file_sha256(output)
    ):
        raise OutputError(
            f"--output {output} exists and is not this job's output (the report {report} records no "
            "such file); --resume replaces only its own files: move it away or choose another --output"
        )


def _own_report(report: Path, work: Path) -> Mapping[str, Any] | None:
    """The existing report if this job (this work file) wrote it; None if there is none."""
    if not present(report):
        return None
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        data = None
    named = data.get("work") if isinstance(data, dict) else None
    if not isinstance(named, str) or not same_file(named, work):
        raise OutputError(
            f"--report {report} exists and is not this job's report (it names no work file {work}); "
            "--resume replaces only its own files: move it away or choose another --report"
        )
    return data


def _cut(extra_info: Mapping[str, Any], kept: Sequence[int]) -> dict[str, Any]:
    extra = dict(extra_info)
    dupo = dict(extra["dupo"])
    duals = list(dupo["duals"])
    dupo["duals"] = [duals[q] for q in kept]
    extra["dupo"] = dupo
    return extra


def jobs_from_rows(rows: Sequence[Mapping[str, Any]]) -> list[FilterJob]:
    return [FilterJob(index=i, id=row_id(row, i), row=row, digest=row_digest(row)) for i, row in enumerate(rows)]
