"""Run one async job per row, many at once, and hand the results over in input order.

Many rows in flight keep the micro-batcher's batches large; handing results over in input order
keeps the output file a prefix of the final file at every moment, which is what makes `--resume`
exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


async def run_in_order(
    items: Sequence[T],
    worker: Callable[[T], Awaitable[dict[str, Any]]],
    on_result: Callable[[dict[str, Any]], None],
    *,
    concurrency: int = 32,
    progress: Any = None,
) -> int:
    """Run `worker` over `items` with at most `concurrency` in flight; call `on_result` in order.

    The worker is expected to turn a row's failure into a failed row; an exception escaping it is
    a bug and stops the run (rows already handed over stay written). Returns the rows handled.
    """
    concurrency = max(1, concurrency)
    max_buffered = 4 * concurrency  # bound memory when one slow row holds up the writer
    in_flight: dict[asyncio.Task, int] = {}
    finished: dict[int, dict[str, Any]] = {}
    next_launch = next_emit = 0
    try:
        while next_emit < len(items):
            while (
                next_launch < len(items)
                and len(in_flight) < concurrency
                and next_launch - next_emit < max_buffered
            ):
                task = asyncio.ensure_future(worker(items[next_launch]))
                in_flight[task] = next_launch
                next_launch += 1
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                finished[in_flight.pop(task)] = task.result()
            while next_emit in finished:
                on_result(finished.pop(next_emit))
                next_emit += 1
                if progress is not None:
                    progress.update(1)
    finally:
        for task in in_flight:
            task.cancel()
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
    return next_emit


def check_resume_prefix(
    done: Sequence[Mapping[str, Any]],
    expected: Sequence[tuple[int, str]],
    path: Any,
    digests: Sequence[str] | None = None,
) -> None:
    """The rows already written must be exactly the first rows of this input, in order, and (when
    `digests` are given and the row recorded one) made from the same content."""
    if len(done) > len(expected):
        raise ValueError(
            f"{path} holds {len(done)} rows but the input has only {len(expected)}; wrong --input?"
        )
    for position, (row, (index, ident)) in enumerate(zip(done, expected, strict=False)):
        if row.get("index") != index or str(row.get("id")) != ident:
            raise ValueError(
                f"{path} row {position + 1} is (index={row.get('index')!r}, id={row.get('id')!r}) but input row "
                f"{index} is id={ident!r}: the output was written for another input or options"
            )
        recorded = row.get("input_hash")
        if digests is not None and recorded is not None and recorded != digests[position]:
            raise ValueError(
                f"{path} row {position + 1} (id={ident!r}) was made from other content than input row {index}: "
                "the input changed since; rerun with the original --input, or start over with --overwrite"
            )
