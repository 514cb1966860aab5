"""Turn many concurrent `GenerateFn` calls into a few large backend batches.

`dupo_verl.scoring.judge_answer` asks for one dual question at a time, and filter and rerank run
many problems at once; this batcher lets that single code path still feed vLLM offline with big
batches. Callers await a future; one dispatcher task waits for a free backend slot, gives
concurrent callers a moment to enqueue, then ships everything pending (up to the batch cap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from dupo_verl.generation.base import (
    GenerationBackend,
    GenerationError,
    GenerationRequest,
    GenerationStats,
    Messages,
    ValueRequest,
    request_seed,
)
from dupo_verl.scoring import Completion
from dupo_verl.tasks import DualReply

logger = logging.getLogger(__name__)


class MicroBatcher:
    """A `dupo_verl.scoring.GenerateFn` in front of a batched `GenerationBackend`.

    Each request's seed is derived from `seed` and its `session_id` (see `request_seed`), so results
    do not depend on how requests were grouped into batches. Use as an async context manager, or
    call `aclose()` when done.
    """

    def __init__(
        self,
        backend: GenerationBackend,
        *,
        seed: int = 0,
        max_batch_size: int | None = None,
        max_wait_s: float = 0.005,
        max_concurrent_batches: int | None = None,
    ) -> None:
        self.backend = backend
        self.seed = seed
        self.max_batch_size = max(1, max_batch_size or backend.max_batch_size)
        self.max_wait_s = max_wait_s
        self.max_concurrent_batches = max(1, max_concurrent_batches or backend.max_concurrent_batches)
        self.stats = GenerationStats()
        self._pending: list[tuple[GenerationRequest, asyncio.Future]] = []
        self._wakeup: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._dispatcher: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        # identical likelihood or greedy dual questions in flight at once are asked once (dupo_verl.shared_calls)
        self.shared_scope = ("batcher", id(self))

    @property
    def control_texts(self) -> frozenset[str]:
        """The backend model's control strings, refused in answers (`dupo_verl.control_text`)."""
        return self.backend.control_texts

    async def __call__(
        self,
        messages: Messages,
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        session_id: str,
    ) -> list[Completion]:
        request = GenerationRequest(
            messages=[dict(m) for m in messages],
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            seed=request_seed(self.seed, session_id, messages),
        )
        return await self.submit(request)

    async def value_logprobs(self, messages: Messages, reply: DualReply, *, session_id: str) -> list[float]:
        """`dupo_verl.scoring.ValueLogprobFn`: queued and batched like generation requests."""
        del session_id  # a prefill has no randomness to seed
        return await self.submit(ValueRequest(messages=[dict(m) for m in messages], reply=reply))  # type: ignore[arg-type]

    async def submit(self, request: GenerationRequest) -> list[Completion]:
        """Queue one request and wait for its completions (raises `GenerationError` on failure)."""
        self._ensure_started()
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    def _ensure_started(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._wakeup = asyncio.Event()
            self._slots = asyncio.Semaphore(self.max_concurrent_batches)
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        assert self._wakeup is not None and self._slots is not None
        while True:
            await self._wakeup.wait()
            await self._slots.acquire()
            # Let callers woken in the same loop turn enqueue too (their next dual questions).
            await asyncio.sleep(self.max_wait_s)
            batch = self._pending[: self.max_batch_size]
            del self._pending[: len(batch)]
            if not self._pending:
                self._wakeup.clear()
            if not batch:
                self._slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[GenerationRequest, asyncio.Future]]) -> None:
        assert self._slots is not None
        requests = [request for request, _ in batch]
        try:
            try:
                results: list[Any] = await self._call_backend(requests)
                if len(results) != len(requests):
                    raise GenerationError(
                        f"backend {self.backend.name!r} returned {len(results)} results for {len(requests)} requests"
                    )
            except Exception as exc:  # the whole batch failed: every caller gets the error
                logger.warning("generation batch of %d failed: %r", len(requests), exc)
                results = [exc] * len(requests)
        finally:
            self._slots.release()
        self._record(requests, results)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(
                    result if isinstance(result, GenerationError) else GenerationError(repr(result))
                )
            else:
                future.set_result(result)

    async def _call_backend(self, requests: list[Any]) -> list[Any]:
        """Generation and likelihood requests of one batch go to their two backend calls, one after the
        other (an offline engine such as `vllm.LLM` is not safe to call from two threads)."""
        gen = [i for i, r in enumerate(requests) if not isinstance(r, ValueRequest)]
        val = [i for i, r in enumerate(requests) if isinstance(r, ValueRequest)]
        outputs = []
        if gen:
            outputs.append(await self.backend.agenerate([requests[i] for i in gen]))
        if val:
            outputs.append(await self.backend.ascore_values([requests[i] for i in val]))
        results: list[Any] = [None] * len(requests)
        for indices, output in zip([ix for ix in (gen, val) if ix], outputs, strict=True):
            if len(output) != len(indices):
                raise GenerationError(
                    f"backend {self.backend.name!r} returned {len(output)} results for {len(indices)} requests"
                )
            for i, result in zip(indices, output, strict=True):
                results[i] = result
        return results

    def _record(self, requests: list[Any], results: list[Any]) -> None:
        self.stats.batches += 1
        self.stats.batch_sizes.append(len(requests))
        for request, result in zip(requests, results, strict=True):
            self.stats.requests += 1
            if isinstance(request, ValueRequest):
                self.stats.samples += 1
                if isinstance(result, BaseException):
                    self.stats.failed_requests += 1
                continue
            self.stats.samples += request.n
            if isinstance(result, BaseException):
                self.stats.failed_requests += 1
            else:
                self.stats.completion_tokens += sum(c.num_tokens for c in result)

    async def aclose(self) -> None:
        """Stop the dispatcher; pending callers get a `GenerationError`."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        for _, future in self._pending:
            if not future.done():
                future.set_exception(GenerationError("generator closed"))
        self._pending.clear()

    async def __aenter__(self) -> MicroBatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
