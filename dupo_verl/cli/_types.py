"""Argument types and the error boundary shared by the data commands (prepare, filter, rerank, report).

Every numeric flag is checked at the door (finite, in range) so an absurd value is one argparse
error line, not a traceback or a stored `inf`; every user error raised later (a missing or
corrupt file, an unwritable output, an option a task rejects) becomes one `error:` line.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable

# Large enough for any real job, small enough that no later arithmetic overflows or allocates absurdly.
MAX_COUNT = 10**9


def int_in(low: int, high: int = MAX_COUNT) -> Callable[[str], int]:
    """argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer in [{low}, {high}], got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in [{low}, {high}], got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def float_in(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """argparse type: a finite number in the interval (brackets as given)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = (
            math.isfinite(value)
            and (value > low if low_open else value >= low)
            and (value < high if high_open else value <= high)
        )
        if not ok:
            raise argparse.ArgumentTypeError(f"must be a number in {interval}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def nonblank(text: str) -> str:
    """argparse type: text that is not empty or blank (an empty path reads as the current folder,
    an empty column name silently falls back to the default, an empty label ends up in every row)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must not be empty, got {text!r}")
    return text


USER_ERRORS = (OSError, ValueError, KeyError, TypeError)


def report_errors(
    command: str, run: Callable[[argparse.Namespace], int]
) -> Callable[[argparse.Namespace], int]:
    """`run`, with a user error printed as one `error:` line (exit status 2) instead of a traceback
    (set `DUPO_DEBUG=1` to get the traceback)."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except USER_ERRORS as exc:
            if os.environ.get("DUPO_DEBUG"):  # a developer chasing a bug wants the traceback
                raise
            print(f"error: {command}: {describe(exc)}", file=sys.stderr)
            return 2

    return guarded


def describe(exc: BaseException) -> str:
    """An exception as one line: KeyError without its quotes, OSError with the file it names."""
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def parse_pairs(items: list[str], flag: str) -> dict[str, str]:
    """Repeated `KEY=VALUE` flags as a dict (ValueError naming the flag for a malformed one)."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} must look like KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value
    return pairs
