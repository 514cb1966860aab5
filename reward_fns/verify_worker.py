"""Child process that runs math-verify with its signal timeouts off; the parent kills it on overrun.

Protocol (one JSON object per line on stdin, one line on stdout): the child prints ``ready`` once
math-verify is imported, then answers each ``{"gold": str, "pred": str}`` with ``1`` (equal), ``0``
(not equal or unparsable) or ``e`` (math-verify raised). It exits on end of input, or when its
parent dies, so an orphaned helper never outlives the trainer.
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


def judge(gold: str, pred: str) -> bool:
    """math-verify's verdict on two bare answers (each parsed in math mode, then boxed, then raw)."""
    from math_verify import verify

    gold_parsed, pred_parsed = _parse(gold), _parse(pred)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


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


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent; it closes our stdin
    _limit_memory()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    logging.disable(logging.CRITICAL)  # math-verify warns on every disabled timeout
    import math_verify  # noqa: F401  (import before "ready" so the parent's time bound excludes it)

    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            verdict = b"1" if judge(str(request["gold"]), str(request["pred"])) else b"0"
        except Exception:  # math-verify or sympy raised: the caller counts it as "not equal"
            verdict = b"e"
        out.write(verdict + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
