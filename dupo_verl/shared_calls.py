"""Identical calls in flight at the same time share one call.

Why: the rollouts of a GRPO group that reach the same answer ask the dual the same question (the
dual prompt holds only the known part and the answer). In likelihood mode the answer to that
question is one deterministic prefill, so asking it once for all of them gives every rollout the
same log-probs it would have read itself, for one request instead of several. Only calls pending at
the same moment are joined: nothing outlives its call, so a judge whose weights change between
steps (the self-dual) is never answered from an older policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

# (event loop id, key) -> the call in flight; an entry is removed as its call ends
_IN_FLIGHT: dict[tuple[int, Hashable], asyncio.Future[Any]] = {}
_waiting = 0  # callers awaiting a shared call, all loops


def _forget(slot: tuple[int, Hashable], call: asyncio.Future[Any]) -> None:
    if _IN_FLIGHT.get(slot) is call:
        del _IN_FLIGHT[slot]
    if not call.cancelled():
        call.exception()  # read, so a failure every caller gave up on is not reported as never retrieved


async def shared_call(key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
    """`call()`'s result, or that of an identical call (same `key`) already in flight.

    A caller that is cancelled (its timeout) leaves the shared call running for those waiting on it,
    but no one joins it any more; a call that fails fails for every caller that joined it (each then
    retries on its own).
    """
    loop = asyncio.get_running_loop()
    slot = (id(loop), key)
    running = _IN_FLIGHT.get(slot)
    if running is None or running.done() or running.get_loop() is not loop:  # (a dead loop's id reused)
        running = asyncio.ensure_future(call())
        _IN_FLIGHT[slot] = running
        running.add_done_callback(lambda done: _forget(slot, done))
    global _waiting
    _waiting += 1
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        # a caller gave up on it (its timeout): its retry, and any later caller, asks afresh instead
        # of joining a call that may never answer; those already waiting keep waiting on it
        if _IN_FLIGHT.get(slot) is running:
            del _IN_FLIGHT[slot]
        raise
    finally:
        _waiting -= 1


def in_flight() -> tuple[int, int]:
    """(calls pending, callers awaiting them): a test's way to know every caller has joined, and
    that nothing is left behind."""
    return len(_IN_FLIGHT), _waiting
