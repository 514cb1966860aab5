"""Task code (a `DualTask`'s hooks) called from the scorer's event loop with a bound on its time.

A task's hooks are the user's code: a `score_reconstruction` that sleeps, or loops forever, would
otherwise stall its sample (and, on the event loop, every rollout of the worker) with nothing to
show for it. Each call runs in a worker thread (at most `MAX_CONCURRENT_CALLS` at once; the clock
starts when a call gets its slot, so waiting for one under load is not the task's time). A call past
`timeout_s` raises `TaskCodeTimeout` for the caller to count (`dupo_task_timeouts`), never to score;
its thread cannot be killed from Python, so it is left to finish in the background, no longer holding
a slot (and, a daemon, not holding the process at exit). Every call's time is added to the open
`task_code_tally`s (`dupo_task_seconds`), so a slow task is seen even when it stays under its bound.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Task-code calls running at once per event loop (the rest wait for a slot, which is not their time;
# they are CPU-bound under the GIL, so more threads would only add switching).
MAX_CONCURRENT_CALLS = 16
# Abandoned (timed-out) calls still running per task before new calls of that task are refused at
# once: a task that hangs on every sample must not leak one thread per sample for the whole run.
MAX_ABANDONED_CALLS = 32

_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_ABANDONED: dict[str, int] = {}
_WARNED: set[tuple[str, str]] = set()


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


class TaskCodeFailure(RuntimeError):
    """Task code raised what an awaiting caller cannot take as an exception: `StopIteration` (a future
    cannot hold it) or a `BaseException` such as `SystemExit` (it would end the worker): a failure of
    that call, like any other exception."""


def _contained(call: Callable[[], T]) -> T:
    try:
        return call()
    except StopIteration as exc:
        raise TaskCodeFailure(f"task code raised {exc!r}") from exc
    except Exception:
        raise
    except BaseException as exc:  # only the hook itself can raise these in a worker thread
        raise TaskCodeFailure(f"task code raised {type(exc).__name__}: {exc!r:.200}") from None


class _DaemonPool:
    """Daemon worker threads, one more whenever none is idle, so a call never waits in a queue (its
    clock runs from its submission) and a worker stuck in a hook holds nothing but itself. Daemon: a
    hook stuck forever must not keep the process from exiting (`concurrent.futures` joins its
    workers at exit). Its size is the most calls ever in flight at once plus the stuck ones."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.idle = 0
        self.lock = threading.Lock()

    def submit(self, call: Callable[[], object]) -> Future:
        future: Future = Future()
        with self.lock:
            start = self.idle == 0
            if not start:
                self.idle -= 1  # that idle worker takes this job
        self.jobs.put((future, call))
        if start:
            threading.Thread(target=self._work, name="dupo-task", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            future, call = self.jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # `_contained` has made it an Exception already
                    future.set_exception(exc)
            with self.lock:
                self.idle += 1


_POOL = _DaemonPool()


def _submit(call: Callable[[], T]) -> Future:
    # the context carries the open tallies (this module's and math-verify's) into the thread
    context = contextvars.copy_context()
    return _POOL.submit(lambda: context.run(_contained, call))


def _release_abandoned(task_name: str) -> None:
    with _LOCK:
        _ABANDONED[task_name] -= 1


def _stuck_calls(task_name: str) -> int:
    with _LOCK:
        return _ABANDONED.get(task_name, 0)


def _refuse(task_name: str, stuck: int) -> TaskCodeTimeout:
    _record(0.0, True)
    if (task_name, "refused") not in _WARNED:
        _WARNED.add((task_name, "refused"))
        logger.error(
            "%d calls of task %r are still running past task_timeout_s; its further calls are refused while "
            "they run, each counted in dupo_task_timeouts with no verdict. Fix the hook that hangs. Logged once.",
            stuck, task_name,
        )
    return TaskCodeTimeout(f"{stuck} calls of task {task_name!r} are still running past their bound")


def _abandon(task_name: str, running: Future) -> bool:
    """Leave a call that is still running behind (counted per task); False if it has ended."""
    with _LOCK:
        if running.done():
            return False
        _ABANDONED[task_name] = _ABANDONED.get(task_name, 0) + 1
    running.add_done_callback(lambda _: _release_abandoned(task_name))
    return True


async def run_task_code(task_name: str, hook: str, call: Callable[[], T], timeout_s: float) -> T:
    """`call()` (task code) in a worker thread, bounded by `timeout_s` seconds of wall time from when
    it gets a slot. Its exceptions propagate (`StopIteration` and `BaseException`s as
    `TaskCodeFailure`); running past the bound raises `TaskCodeTimeout`."""
    if (stuck := _stuck_calls(task_name)) >= MAX_ABANDONED_CALLS:
        raise _refuse(task_name, stuck)
    slots = _slots()
    await slots.acquire()
    try:
        if (stuck := _stuck_calls(task_name)) >= MAX_ABANDONED_CALLS:  # others got stuck while this one waited
            raise _refuse(task_name, stuck)
        running = _submit(call)
        start = time.monotonic()
        abandoned = False
        outcome = asyncio.wrap_future(running)
        # a call left behind (timed out, or its caller cancelled) may still fail later: retrieved here,
        # so asyncio does not log "exception was never retrieved" for it
        outcome.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(outcome), timeout_s)
        except asyncio.TimeoutError:
            abandoned = _abandon(task_name, running)
            if not abandoned:  # it finished as the bound ran out: take its result
                return running.result()
            _warn_once(task_name, hook, timeout_s)
            raise TaskCodeTimeout(f"{hook} of task {task_name!r} ran past {timeout_s:g} s") from None
        except asyncio.CancelledError:  # the caller gave up: the call must not hold a worker unseen
            _abandon(task_name, running)
            raise
        finally:
            _record(min(time.monotonic() - start, timeout_s), abandoned)
    finally:
        slots.release()


def _warn_once(task_name: str, hook: str, timeout_s: float) -> None:
    if (task_name, "timeout") not in _WARNED:
        _WARNED.add((task_name, "timeout"))
        logger.warning(
            "%s of task %r ran past task_timeout_s=%g s; that call gives no verdict and is counted in "
            "dupo_task_timeouts (its thread finishes in the background). Logged once per task.",
            hook, task_name, timeout_s,
        )
