"""Child process that runs math-verify under a CPU-time bound; the parent kills it only if that fails.

Protocol (one JSON object per line on stdin, one line on stdout): the child prints ``ready`` once
math-verify is imported and warmed up, then answers each ``{"gold": str, "pred": str, "timeout":
seconds}`` with ``1`` (equal), ``0`` (not equal or unparsable), ``e`` (math-verify raised) or ``t``
(no verdict within ``timeout`` seconds of this process's CPU time, or out of memory). It exits on
end of input, or when its parent dies, so an orphaned helper never outlives the trainer.

Why a CPU-time timer: on a busy machine a check gets a fraction of a core, and a wall-clock bound
would cut off checks a quiet machine finishes, so verdicts would depend on load. ``ITIMER_PROF``
counts only this process's own compute. It fires on this process's main thread (the thread that
runs the check), where Python may raise from a signal handler; the parent still bounds a check
that the timer cannot interrupt (a long C call) by killing the process, without any signal.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time

MEMORY_LIMIT_ENV = "REWARD_FNS_VERIFY_MEMORY_MB"
DEFAULT_MEMORY_MB = 4096  # sympy on "10^{10^{10}}" would otherwise eat the machine
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
# One pair of each kind of answer, compared before "ready": math-verify's first parse builds its
# LaTeX grammar and sympy imports simplification, sets, matrices and intervals lazily (about half a
# second of CPU); a fresh helper must not pay that inside a caller's bound.
WARM_UP_PAIRS = (
    ("x^2+2x+1", "(x+1)^2"),
    ("\\sqrt{2}", "1.41421356"),
    ("\\{1, 2\\}", "\\{2, 1\\}"),
    ("[1, 2)", "[1, 2)"),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("x = 3", "3"),
    ("\\frac{\\pi}{2}", "90^\\circ"),
    ("\\sin(x)^2 + \\cos(x)^2", "1"),
    ("\\log_2 8", "3"),
    ("(1, 2)", "(1, 2)"),
)


class Overrun(BaseException):
    """Raised by the CPU timer. A BaseException, so that math-verify's and sympy's many ``except
    Exception`` blocks cannot turn a timeout into a verdict of "not equal"."""


def judge(gold: str, pred: str) -> bool:
    """math-verify's verdict on two bare answers (each parsed in math mode, then boxed, then raw)."""
    from math_verify import verify

    gold_parsed, pred_parsed = _parse(gold), _parse(pred)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def answer(request: dict) -> bytes:
    """The reply line (without newline) to one request; raises ``Overrun`` past its CPU bound."""
    gold, pred, timeout = str(request["gold"]), str(request["pred"]), float(request["timeout"])
    _arm(timeout)
    try:
        return b"1" if judge(gold, pred) else b"0"
    finally:
        _arm(0.0)


def _arm(seconds: float) -> None:
    if hasattr(signal, "setitimer"):  # else (not POSIX) only the parent's kill bounds the check
        signal.setitimer(signal.ITIMER_PROF, seconds)


def _on_timer(signum: int, frame: object) -> None:
    raise Overrun


def _parse(answer: str) -> list:
    from math_verify import parse

    bare = _UNESCAPED_DOLLAR.sub("", answer).strip()
    for wrapped in (f"${bare}$", f"\\boxed{{{bare}}}", answer):
        parsed = parse(wrapped, parsing_timeout=None)
        if parsed:
            return parsed
    return []


def _limit_memory() -> None:
    try:
        import resource

        mb = int(os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_MB))
        if mb > 0:
            resource.setrlimit(resource.RLIMIT_AS, (mb * 2**20, mb * 2**20))
    except (ImportError, ValueError, OSError):
        pass  # not POSIX, or a lower hard limit: the parent's time bound still holds


def _exit_with_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _warm_up() -> None:
    for gold, pred in WARM_UP_PAIRS:
        try:
            judge(gold, pred)
        except Exception:  # a warm-up pair math-verify dislikes still warmed what it touched
            pass


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent; it closes our stdin
    if hasattr(signal, "SIGPROF"):
        signal.signal(signal.SIGPROF, _on_timer)
    _limit_memory()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    logging.disable(logging.CRITICAL)  # math-verify warns on every disabled timeout
    _warm_up()  # imports and first parses before "ready": the parent's time bound excludes them

    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            verdict = answer(json.loads(line))
        except (Overrun, MemoryError):  # over its budget: no verdict, the helper stays usable
            verdict = b"t"
        except Exception:  # math-verify or sympy raised: the caller counts it as "not equal"
            verdict = b"e"
        out.write(verdict + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
