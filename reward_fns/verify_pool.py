"""Time-bounded math-verify calls from any thread: helper subprocesses, killed and replaced on overrun.

math-verify bounds its own time with SIGALRM, which only works on the main thread; reward code
runs in worker threads, asyncio executors and daemonic processes. So the symbolic check runs in
a small pool of persistent helper processes (``reward_fns.verify_worker``, started with
``subprocess``, which daemonic processes may do). A helper that overruns the caller's timeout is
killed and a fresh one started; the caller gets "not equal". Plain numbers never come here.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

logger = logging.getLogger(__name__)

WORKERS_ENV = "REWARD_FNS_VERIFY_WORKERS"
STARTUP_TIMEOUT_S = 60.0  # importing sympy on a loaded machine; paid once per helper
QUEUE_WAIT_FACTOR = 10.0  # a caller waits at most this many timeouts for a free helper
# The helper imports this very copy of reward_fns (a source checkout need not be installed).
_HELPER_MAIN = (
    f"import sys; p = {str(Path(__file__).resolve().parent.parent)!r}\n"
    "if p not in sys.path: sys.path.insert(0, p)\n"
    "from reward_fns.verify_worker import main; main()"
)


class _Helper:
    """One helper process and the line-buffered pipe to it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HELPER_MAIN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.ready = False
        self._buffer = b""

    def ask(self, gold: str, pred: str, timeout: float) -> bool | None:
        """The helper's verdict, or None when it failed to answer in time (the caller kills it)."""
        if not self.ready:
            if self._readline(time.monotonic() + STARTUP_TIMEOUT_S) != b"ready":
                return None
            self.ready = True
        try:
            self.proc.stdin.write(json.dumps({"gold": gold, "pred": pred}).encode() + b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            return None
        line = self._readline(time.monotonic() + timeout)
        if line is None:
            return None
        return line == b"1"

    def _readline(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while b"\n" not in self._buffer:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0 or not poller.poll(remaining_ms):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:  # the helper died (memory limit, crash)
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.abandon()

    def abandon(self) -> None:
        """Close our pipe ends without touching the process (after fork, it is the parent's)."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


class VerifyPool:
    """Up to ``max_workers`` helpers shared by all threads of this process."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max(1, max_workers)
        self.stats: Counter[str] = Counter()
        self._cond = threading.Condition()
        self._idle: list[_Helper] = []
        self._all: set[_Helper] = set()

    def verify(self, gold: str, pred: str, timeout: float) -> bool:
        """math-verify's verdict; False (logged and counted in ``stats``) when it overran ``timeout``.

        Every wait is bounded: for a free helper ``QUEUE_WAIT_FACTOR * timeout`` (each busy helper
        frees up within ``timeout``), for a helper's startup (once, or after a kill)
        ``STARTUP_TIMEOUT_S``, for the check itself ``timeout``.
        """
        helper = self._acquire(time.monotonic() + QUEUE_WAIT_FACTOR * timeout)
        if helper is None:
            self._count("no_free_helper")
            logger.warning("math-verify: no helper free within %.1fs; counted as not equal",
                           QUEUE_WAIT_FACTOR * timeout)
            return False
        verdict = helper.ask(gold, pred, timeout)
        if verdict is None:
            self._count("timeouts")
            logger.warning("math-verify overran %.1fs (or its helper died); counted as not equal: %.80r",
                           timeout, pred)
            self._replace(helper)
            return False
        with self._cond:
            self.stats["calls"] += 1
            self._idle.append(helper)
            self._cond.notify()
        return verdict

    def warm_up(self) -> None:
        """Start one helper now so that the first symbolic check does not pay for its startup."""
        with self._cond:
            if not self._all:
                self._idle.append(self._spawn())

    def close(self) -> None:
        with self._cond:
            helpers, self._all, self._idle = list(self._all), set(), []
        for helper in helpers:
            helper.kill()

    def abandon(self) -> None:
        for helper in list(self._all):
            helper.abandon()

    def _count(self, event: str) -> None:
        with self._cond:
            self.stats[event] += 1

    def _acquire(self, deadline: float) -> _Helper | None:
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self.max_workers:
                    return self._spawn()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def _spawn(self) -> _Helper:
        helper = _Helper()
        self._all.add(helper)
        return helper

    def _replace(self, helper: _Helper) -> None:
        helper.kill()
        with self._cond:
            self._all.discard(helper)
            self.stats["restarts"] += 1
            self._idle.append(self._spawn())  # starts importing now, ready by the next call
            self._cond.notify()


_POOL: VerifyPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> VerifyPool:
    """This process's pool (created on first use; a forked child gets its own)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            default = min(8, max(4, os.cpu_count() or 4))
            try:
                workers = int(os.environ.get(WORKERS_ENV, default))
            except ValueError:
                workers = default
            _POOL = VerifyPool(workers)
        return _POOL


def _close_pool() -> None:
    if _POOL is not None:
        _POOL.close()


def _forget_pool_after_fork() -> None:
    global _POOL, _POOL_LOCK
    if _POOL is not None:
        _POOL.abandon()
    _POOL, _POOL_LOCK = None, threading.Lock()


atexit.register(_close_pool)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
