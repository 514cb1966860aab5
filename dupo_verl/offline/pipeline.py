"""The shell of a long offline job: resumable output, progress bar, micro-batched generation.

Filter and rerank differ only in their per-row worker; opening (or resuming) the output, skipping
the rows already written, building the backend only when there is work left, and writing each
finished row in input order is the same for both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

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


@dataclass
class JobResult:
    rows: list[dict[str, Any]]
    resumed_rows: int
    stats: GenerationStats | None


def run_rows(
    jobs: Sequence[J],
    key: Callable[[J], tuple[int, str]],
    worker: Callable[[J, GenerateFn], Awaitable[dict[str, Any]]],
    make_backend: Callable[[], GenerationBackend],
    options: JobOptions,
) -> JobResult:
    """Run `worker` on every job not yet in `options.output`; return all rows (old and new)."""
    writer = ResumableJsonlWriter(options.output, resume=options.resume, overwrite=options.overwrite)
    rows = writer.open()
    try:
        check_resume_prefix(rows, [key(j) for j in jobs], options.output)
        resumed = len(rows)
        todo = list(jobs[resumed:])
        if not todo:
            return JobResult(rows=rows, resumed_rows=resumed, stats=None)
        backend = make_backend()

        def emit(row: dict[str, Any]) -> None:
            writer.write(row)
            rows.append(row)

        async def main() -> GenerationStats:
            batcher = MicroBatcher(backend, seed=options.seed, max_batch_size=options.batch_size)
            try:
                with tqdm(
                    total=len(jobs),
                    initial=resumed,
                    desc=options.description,
                    disable=not options.progress,
                    dynamic_ncols=True,
                ) as bar:
                    await run_in_order(
                        todo,
                        lambda job: worker(job, batcher),
                        emit,
                        concurrency=options.concurrency,
                        progress=bar,
                    )
            finally:
                await batcher.aclose()
                await backend.aclose()
            return batcher.stats

        stats = asyncio.run(main())
        return JobResult(rows=rows, resumed_rows=resumed, stats=stats)
    finally:
        writer.close()
