"""The shell of a long offline job: resumable output, progress bar, micro-batched generation.

Filter and rerank differ only in their per-row worker; opening (or resuming) the output, skipping
the rows already written, building the backend only when there is work left, and writing each
finished row in input order is the same for both.

The settings that decide the rows are recorded beside the output (`<output>.settings.json`), and
`--resume` refuses to continue an output made with other settings (naming each difference), so a
file never mixes rows of two configurations. On resume, rows recorded as `failed` or `invalid` are
redone rather than kept forever: the file is cut before the first such row and the rows after it
are written again from memory (only the retried rows are recomputed), so the file stays one row per
input row, in input order (a command may redo more, e.g. rerank's rows without any dual verdict).
`--overwrite` replaces the old output and its settings record only when the first new row is written,
so a run that fails before that (a missing model, a dead server at start) leaves the old results
whole. Each row records a short hash of the input row it came from
(`input_hash`), so `--resume` also refuses an input whose rows changed under the same ids.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from dupo_verl.files import atomic_write_text
from dupo_verl.generation import GenerationBackend, GenerationStats, MicroBatcher
from dupo_verl.offline.jsonl_writer import ResumableJsonlWriter
from dupo_verl.offline.runner import check_resume_prefix, run_in_order
from dupo_verl.scoring import GenerateFn

J = TypeVar("J")


@dataclass(frozen=True)
class JobOptions:
    output: Path
    resume: bool = False
    overwrite: bool = False
    concurrency: int = 32
    seed: int = 0
    batch_size: int | None = None
    progress: bool = True
    description: str = "rows"
    settings: Mapping[str, Any] | None = None  # what decides the rows; recorded and checked on resume


@dataclass
class JobResult:
    rows: list[dict[str, Any]]
    resumed_rows: int
    stats: GenerationStats | None
    retried_rows: int = 0


RETRY_STATUSES = frozenset({"failed", "invalid"})
INPUT_HASH = "input_hash"


def settings_path(output: Path) -> Path:
    return output.with_name(output.name + ".settings.json")


def _check_settings(options: JobOptions, resuming: bool) -> None:
    """Refuse to resume an output made with other settings."""
    if options.settings is None:
        return
    path = settings_path(options.output)
    current = _current_settings(options.settings)
    if resuming:
        if not path.is_file():
            raise ValueError(
                f"--resume: {options.output} has no record of its settings ({path.name}), so it cannot be "
                "checked that this run continues the same job; start over with --overwrite"
            )
        try:
            recorded = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"--resume: {path} is not a settings record ({exc}); use --overwrite") from None
        changed = [
            f"{key} {recorded.get(key, '(unset)')!r} -> {current.get(key, '(unset)')!r}"
            for key in sorted(set(recorded) | set(current))
            if recorded.get(key) != current.get(key)
        ]
        if changed:
            raise ValueError(
                f"--resume: {options.output} was made with other settings ({'; '.join(changed)}); "
                "rerun with the same options, or start over with --overwrite"
            )


def _current_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(settings), sort_keys=True, default=str))


def _record_settings(options: JobOptions) -> None:
    """Write this run's settings beside the output (`<output>.settings.json`)."""
    if options.settings is None:
        return
    record = {"command": options.description, "settings": _current_settings(options.settings)}
    atomic_write_text(settings_path(options.output), json.dumps(record, indent=2) + "\n")


def _default_redo(row: Mapping[str, Any]) -> bool:
    return row.get("status") in RETRY_STATUSES


def _check_not_longer(done: Sequence[Mapping[str, Any]], jobs: int, output: Path) -> None:
    """An output longer than this run's input was made from more rows: often the same input
    without --limit (or a larger one), else another input."""
    if len(done) > jobs:
        raise ValueError(
            f"--resume: {output} holds {len(done)} rows but this run reads only {jobs} input rows; "
            "resume with the --limit (or none) of the run that wrote it, or check --input"
        )


def run_rows(
    jobs: Sequence[J],
    key: Callable[[J], tuple[int, str]],
    worker: Callable[[J, GenerateFn], Awaitable[dict[str, Any]]],
    make_backend: Callable[[], GenerationBackend],
    options: JobOptions,
    digest: Callable[[J], str] | None = None,
    redo_row: Callable[[Mapping[str, Any]], bool] = _default_redo,
) -> JobResult:
    """Run `worker` on every job not yet in `options.output`; return all rows (old and new).

    `digest(job)`, when given, is stored in each new row as `input_hash` and checked on resume.
    `redo_row(row)` says which rows already written `--resume` does again (default: failed, invalid).
    """
    writer = ResumableJsonlWriter(options.output, resume=options.resume, overwrite=options.overwrite)
    done = writer.open()
    try:
        _check_settings(options, resuming=bool(done))
        writer.when_committed(lambda: _record_settings(options))
        digests = [digest(j) for j in jobs] if digest is not None else None
        _check_not_longer(done, len(jobs), options.output)
        check_resume_prefix(done, [key(j) for j in jobs], options.output, digests)
        first_retry = next((i for i, row in enumerate(done) if redo_row(row)), len(done))
        redo = {i for i in range(first_retry, len(done)) if redo_row(done[i])}
        kept_after = {i: done[i] for i in range(first_retry, len(done)) if i not in redo}
        if first_retry < len(done):
            writer.keep_first(first_retry)  # rewritten from here on, in input order
        rows = done[:first_retry]
        resumed = len(done) - len(redo)
        todo = list(range(first_retry, len(jobs)))
        if not todo:
            writer.commit()  # an --overwrite run of an empty input still replaces the old output
            return JobResult(rows=rows, resumed_rows=resumed, stats=None)
        backend = make_backend() if any(i not in kept_after for i in todo) else None

        def emit(row: dict[str, Any]) -> None:
            writer.write(row)
            rows.append(row)

        async def step(i: int, generate: GenerateFn) -> dict[str, Any]:
            if i in kept_after:
                return kept_after[i]
            row = await worker(jobs[i], generate)
            return row if digests is None else {**row, INPUT_HASH: digests[i]}

        async def main() -> GenerationStats | None:
            batcher = (
                MicroBatcher(backend, seed=options.seed, max_batch_size=options.batch_size)
                if backend is not None
                else None
            )
            try:
                with tqdm(
                    total=len(jobs),
                    initial=first_retry,
                    desc=options.description,
                    disable=not options.progress,
                    dynamic_ncols=True,
                ) as bar:
                    await run_in_order(
                        todo,
                        lambda i: step(i, batcher),
                        emit,
                        concurrency=options.concurrency,
                        progress=bar,
                    )
            finally:
                if batcher is not None:
                    await batcher.aclose()
                if backend is not None:
                    await backend.aclose()
            return batcher.stats if batcher is not None else None

        stats = asyncio.run(main())
        writer.commit()
        return JobResult(rows=rows, resumed_rows=resumed, stats=stats, retried_rows=len(redo))
    finally:
        writer.close()
