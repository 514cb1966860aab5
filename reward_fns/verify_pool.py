"""Time-bounded math-verify calls from any thread: a pool of warm helper processes.

math-verify bounds its own time with SIGALRM, which only works on the main thread; reward code
runs in worker threads, asyncio executors and daemonic processes. So the symbolic check runs in
a small pool of persistent helper processes (``reward_fns.verify_worker``, started with
``subprocess``, which daemonic processes may do). How the bound is kept so that a busy machine
gives the same verdicts as a quiet one:

* Only the check's own compute counts. Each helper arms a CPU-time timer (``ITIMER_PROF``) on
  its main thread for each request, so a check starved of CPU by other jobs is not cut off early;
  waiting for a free helper, or for a helper's start-up, is not counted at all.
* A check that overruns is interrupted inside its helper, which answers "timeout" and stays warm.
  Only a helper stuck where its timer cannot reach (one long C call, e.g. a huge factorial) is
  killed: when its CPU time passes the bound plus a grace, or at a wall-clock backstop for a
  helper that neither answers nor computes. Its replacement starts at once and warms up (imports,
  a first parse of each kind) before it takes work; callers prefer helpers that are ready.
* Every exit path returns the helper to the pool or replaces it, and every bound is checked
  before anything is taken (``check_time_bound``), so no input can leak a helper.

The outcome of a call is a ``Verdict``; a timeout is ``Verdict.TIMEOUT``, never "not equal".
Plain numbers never come here (``reward_fns.math`` decides them in-process).
"""

from __future__ import annotations

import atexit
import decimal
import enum
import json
import logging
import numbers
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
MAX_TIME_BOUND_S = 600.0  # one answer comparison; anything longer is a typo (inf, 1e12), not a bound
STARTUP_TIMEOUT_S = 300.0  # importing sympy and warming up, possibly starved by other jobs; paid once
CPU_GRACE_S = 1.0  # CPU beyond the bound before a helper whose own timer did not fire is killed
WALL_BACKSTOP_S = 120.0  # plus WALL_BACKSTOP_FACTOR * bound: a helper neither answering nor computing
WALL_BACKSTOP_FACTOR = 30.0
# The helper imports this very copy of reward_fns (a source checkout need not be installed).
_HELPER_MAIN = (
    f"import sys; p = {str(Path(__file__).resolve().parent.parent)!r}\n"
    "if p not in sys.path: sys.path.insert(0, p)\n"
    "from reward_fns.verify_worker import main; main()"
)


class Verdict(enum.Enum):
    """Outcome of one answer comparison."""

    EQUAL = "equal"
    UNEQUAL = "unequal"
    # No verdict: the check overran its bound, or its helper died or could not start. Not a verdict
    # of "unequal": the caller decides what it scores and counts it.
    TIMEOUT = "timeout"


def check_time_bound(value: object, name: str = "timeout") -> float:
    """``value`` as seconds when it is a real number in (0, ``MAX_TIME_BOUND_S``], else a ValueError naming ``name``.

    >>> check_time_bound(2), check_time_bound(0.5, "verify_timeout")
    (2.0, 0.5)
    """
    seconds = None
    if isinstance(value, (numbers.Real, decimal.Decimal)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except (OverflowError, ValueError, decimal.InvalidOperation):
            seconds = None
    if seconds is None or not 0.0 < seconds <= MAX_TIME_BOUND_S:  # also rejects nan
        raise ValueError(f"{name} must be a number of seconds in (0, {MAX_TIME_BOUND_S:g}], got {value!r:.80}")
    return seconds


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used, or None where /proc cannot tell (not Linux, gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        fields = data.rsplit(b")", 1)[1].split()  # after "(comm)", which may hold spaces
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


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
        self.dead = False
        self._buffer = b""

    def poll_ready(self) -> bool:
        """Whether start-up is over, reading the ``ready`` line if it has come (never blocks)."""
        if not self.ready and not self.dead and self._readline(time.monotonic()) is not None:
            self.ready = True  # the only line a fresh helper writes before its first request
        return self.ready

    def ask(self, gold: str, pred: str, timeout: float) -> tuple[Verdict, bool]:
        """(verdict, whether this helper may be reused); a helper that is not reusable is killed by the caller."""
        if not self.ready:
            if self._readline(time.monotonic() + STARTUP_TIMEOUT_S) != b"ready":
                logger.warning("math-verify helper did not start within %.0fs (exit code %s)",
                               STARTUP_TIMEOUT_S, self.proc.poll())
                return Verdict.TIMEOUT, False
            self.ready = True
        try:
            self.proc.stdin.write(json.dumps({"gold": gold, "pred": pred, "timeout": timeout}).encode() + b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            return Verdict.TIMEOUT, False
        line = self._await_reply(timeout)
        if line is None:
            return Verdict.TIMEOUT, False
        if line == b"t":  # interrupted by its own CPU timer: still warm and in a clean state
            return Verdict.TIMEOUT, True
        return (Verdict.EQUAL if line == b"1" else Verdict.UNEQUAL), True

    def _await_reply(self, timeout: float) -> bytes | None:
        """The reply line, or None once the helper overran beyond its own timer's reach or died."""
        start = time.monotonic()
        cpu_start = _cpu_seconds(self.proc.pid)
        backstop = start + WALL_BACKSTOP_S + WALL_BACKSTOP_FACTOR * timeout
        step = min(0.25, max(0.02, timeout / 4))
        while True:
            line = self._readline(min(time.monotonic() + step, backstop))
            if line is not None or self.dead:
                return line
            now = time.monotonic()
            if now >= backstop:
                return None
            if cpu_start is not None:
                cpu = _cpu_seconds(self.proc.pid)
                if cpu is None or cpu - cpu_start > timeout + CPU_GRACE_S:
                    return None
            elif now - start > timeout + CPU_GRACE_S:  # no CPU accounting here: the wall clock bounds it
                return None

    def _readline(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while b"\n" not in self._buffer:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not poller.poll(remaining_ms):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:  # the helper died (memory limit, crash, killed)
                self.dead = True
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

    def verify(self, gold: str, pred: str, timeout: float) -> Verdict:
        """math-verify's verdict on two bare answers, or ``Verdict.TIMEOUT`` (logged, counted in ``stats``).

        ``timeout`` bounds the check's own CPU time (see the module docstring); waiting for a free
        helper is not part of it. Each wait is still finite: every busy helper answers or is killed
        within its own bound plus a grace, and a helper's start-up within ``STARTUP_TIMEOUT_S``.
        """
        timeout = check_time_bound(timeout)
        if not isinstance(gold, str) or not isinstance(pred, str):
            raise TypeError(f"gold and pred must be str, got {type(gold).__name__} and {type(pred).__name__}")
        helper = self._acquire()
        verdict, reusable = Verdict.TIMEOUT, False
        try:
            verdict, reusable = helper.ask(gold, pred, timeout)
        finally:
            self._release(helper, reusable)
        self._count("timeouts" if verdict is Verdict.TIMEOUT else "verdicts")
        if verdict is Verdict.TIMEOUT:
            logger.warning("math-verify gave no verdict within %.1fs of compute (helper %s): %.80r vs %.80r",
                           timeout, "kept" if reusable else "replaced", pred, gold)
        return verdict

    def warm_up(self) -> None:
        """Start one helper now so that the first symbolic check does not pay for its startup."""
        with self._cond:
            if not self._all:
                self._idle.append(self._spawn())

    def size(self) -> int:
        """Helpers alive or starting (at most ``max_workers``)."""
        with self._cond:
            return len(self._all)

    def pids(self) -> list[int]:
        with self._cond:
            return sorted(h.proc.pid for h in self._all)

    def close(self) -> None:
        """Kill every helper; calls in flight get ``Verdict.TIMEOUT``, later calls start new helpers."""
        with self._cond:
            helpers, self._all, self._idle = list(self._all), set(), []
            self._cond.notify_all()
        for helper in helpers:
            helper.kill()

    def abandon(self) -> None:
        for helper in list(self._all):
            helper.abandon()

    def _count(self, event: str) -> None:
        with self._cond:
            self.stats[event] += 1

    def _acquire(self) -> _Helper:
        """A helper for one request, preferring warm ones; waits (uncounted) while all are busy."""
        with self._cond:
            while True:
                for gone in [h for h in self._idle if h.proc.poll() is not None]:  # died while idle
                    self._idle.remove(gone)
                    self._all.discard(gone)
                    gone.kill()
                    self.stats["restarts"] += 1
                if self._idle:
                    helper = next((h for h in reversed(self._idle) if h.poll_ready()), self._idle[-1])
                    self._idle.remove(helper)
                    return helper
                if len(self._all) < self.max_workers:
                    return self._spawn()
                self._cond.wait()

    def _release(self, helper: _Helper, reusable: bool) -> None:
        if reusable:
            with self._cond:
                if helper in self._all:
                    self._idle.append(helper)
                    self._cond.notify()
                    return
            helper.kill()  # the pool was closed while it worked
            return
        helper.kill()
        with self._cond:
            if helper in self._all:
                self._all.discard(helper)
                self.stats["restarts"] += 1
                try:
                    self._idle.append(self._spawn())  # warms up now, in the background
                except OSError:
                    logger.warning("could not start a math-verify helper", exc_info=True)
            self._cond.notify()

    def _spawn(self) -> _Helper:
        helper = _Helper()
        self._all.add(helper)
        return helper


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
