"""Task code (a `DualTask`'s hooks) called from the scorer's event loop with a bound on its time.

A task's hooks are the user's code: a `score_reconstruction` that sleeps, or loops forever, would
otherwise stall its sample (and, on the event loop, every rollout of the worker) with nothing to
show for it. Each call runs in a worker thread (at most `MAX_CONCURRENT_CALLS` at once; the clock
starts when a call gets its slot, so waiting for one under load is not the task's time). A call past
`timeout_s` raises `TaskCodeTimeout` for the caller to count (`dupo_task_timeouts`), never to score;
its thread cannot be killed from Python, so it is left to finish in the background, no longer holding
a slot, and later calls go to a fresh pool. Every call's time is added to the open
`task_code_tally`s (`dupo_task_seconds`), so a slow task is seen even when it stays under its bound.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Task-code calls running at once per event loop (the rest wait for a slot; they are CPU-bound
# under the GIL, so more threads would only add switching).
MAX_CONCURRENT_CALLS = 16
# Abandoned (timed-out) calls still running per task before new calls of that task are refused at
# once: a task that hangs on every sample must not leak one thread per sample for the whole run.
MAX_ABANDONED_CALLS = 32

_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_ABANDONED: dict[str, int] = {}
_WARNED: set[str] = set()
_POOL: ThreadPoolExecutor | None = None


class TaskCodeTimeout(Exception):
    """A task hook ran past its bound (or its task has too many calls still stuck): no verdict."""


@dataclass
class TaskCodeTally:
    """Task code of one block: wall seconds spent in it, and calls that ran past their bound."""

    seconds: float = 0.0
    timeouts: int = 0


_TALLIES: contextvars.ContextVar[tuple[TaskCodeTally, ...]] = contextvars.ContextVar("task_code_tallies", default=())


@contextmanager
def task_code_tally() -> Iterator[TaskCodeTally]:
    """Tally the task-code calls of this block (and of the asyncio tasks it starts)."""
    tally = TaskCodeTally()
    token = _TALLIES.set((*_TALLIES.get(), tally))
    try:
        yield tally
    finally:
        _TALLIES.reset(token)


def _record(seconds: float, timed_out: bool) -> None:
    for tally in _TALLIES.get():
        tally.seconds += seconds
        tally.timeouts += int(timed_out)


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _SLOTS:
        _SLOTS[loop] = asyncio.Semaphore(MAX_CONCURRENT_CALLS)
    return _SLOTS[loop]


def _submit(call: Callable[[], T]) -> tuple[ThreadPoolExecutor, Future]:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(MAX_CONCURRENT_CALLS, thread_name_prefix="dupo-task")
        pool = _POOL
        # the context carries the open tallies (this module's and math-verify's) into the thread
        return pool, pool.submit(contextvars.copy_context().run, call)


def _retire(pool: ThreadPoolExecutor) -> None:
    """A call of `pool` is stuck: later calls go to a fresh pool, so none waits in a queue behind the
    stuck thread; the old pool's threads end as their calls do."""
    global _POOL
    with _LOCK:
        if _POOL is pool:
            _POOL = None
    pool.shutdown(wait=False)


def _release_abandoned(task_name: str) -> None:
    with _LOCK:
        _ABANDONED[task_name] -= 1


async def run_task_code(task_name: str, hook: str, call: Callable[[], T], timeout_s: float) -> T:
    """`call()` (task code) in a worker thread, bounded by `timeout_s` seconds of wall time from when
    it gets a slot. Its exceptions propagate; running past the bound raises `TaskCodeTimeout`."""
    with _LOCK:
        stuck = _ABANDONED.get(task_name, 0)
    if stuck >= MAX_ABANDONED_CALLS:
        _record(0.0, True)
        raise TaskCodeTimeout(f"{stuck} calls of task {task_name!r} are still running past their bound")
    slots = _slots()
    await slots.acquire()
    abandoned = False
    try:
        pool, running = _submit(call)
        start = time.monotonic()
        outcome = asyncio.wrap_future(running)
        # a call left behind (timed out, or its caller cancelled) may still fail later: retrieved here,
        # so asyncio does not log "exception was never retrieved" for it
        outcome.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(outcome), timeout_s)
        except asyncio.TimeoutError:
            with _LOCK:
                abandoned = not running.done()
                if abandoned:
                    _ABANDONED[task_name] = _ABANDONED.get(task_name, 0) + 1
            if not abandoned:  # it finished as the bound ran out: take its result
                return running.result()
            running.add_done_callback(lambda _: _release_abandoned(task_name))
            _retire(pool)
            _warn_once(task_name, hook, timeout_s)
            raise TaskCodeTimeout(f"{hook} of task {task_name!r} ran past {timeout_s:g} s") from None
        finally:
            _record(min(time.monotonic() - start, timeout_s), abandoned)
    finally:
        slots.release()


def _warn_once(task_name: str, hook: str, timeout_s: float) -> None:
    if task_name not in _WARNED:
        _WARNED.add(task_name)
        logger.warning(
            "%s of task %r ran past task_timeout_s=%g s; that call gives no verdict and is counted in "
            "dupo_task_timeouts (its thread finishes in the background). Logged once per task.",
            hook, task_name, timeout_s,
        )
