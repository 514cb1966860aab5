"""Math answer checking: extract a final answer, compare two answers, score a response.

Plain numbers (the bulk of DuPO's dual reconstructions) are compared exactly in-process; anything
else goes to math-verify in a time-bounded helper process (see ``reward_fns.verify_pool``).

A comparison has three outcomes (``Verdict``): equal, unequal, or no verdict in time. The last is
never folded into "unequal" silently: ``judge_answers`` returns it, and the boolean helpers
(``answers_equal``, ``math_accuracy``) record it in every open ``verify_tally()``, so a caller can
count it and decide what it scores (the DuPO scorer: ``dupo_verify_timeouts``; ``compute_score``:
``verify_timeouts``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator
from fractions import Fraction

from reward_fns.extraction import MAX_ANSWER_CHARS, extract_answer
from reward_fns.latex import normalize_tex_arguments
from reward_fns.numbers import (
    PlainNumber,
    ascii_number_forms,
    is_undefined_number,
    parse_number,
    parse_plain_number,
)
from reward_fns.units import units_differ
from reward_fns.verify_pool import Verdict, check_time_bound, get_pool

__all__ = [
    "Verdict",
    "VerifyTally",
    "answers_equal",
    "check_time_bound",
    "extract_answer",
    "judge_answers",
    "math_accuracy",
    "parse_number",
    "verify_tally",
    "warm_up",
]

logger = logging.getLogger(__name__)

# A decimal written to at least this many places stands for any value within half a unit of its
# last place (0.333333 == 1/3, as math-verify's 6-place rounding has it); a shorter decimal is exact.
# Not rounding both sides: that made 0.0000001 equal 0 while 1e-7 was not.
FLOAT_ROUNDING = 6
DEFAULT_TIMEOUT_S = 2.0


class VerifyTally:
    """Comparisons without a verdict (``Verdict.TIMEOUT``) seen inside one ``verify_tally()`` block."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.timeouts = 0

    def add_timeout(self) -> None:
        with self._lock:
            self.timeouts += 1


_TALLIES: contextvars.ContextVar[tuple[VerifyTally, ...]] = contextvars.ContextVar("reward_fns_verify_tallies", default=())


@contextlib.contextmanager
def verify_tally() -> Iterator[VerifyTally]:
    """Count the comparisons of this block (this thread or asyncio task) that ended without a verdict.

    Tallies nest; each sees every timeout inside it. ``asyncio.to_thread`` carries the tally into
    its thread; a bare ``ThreadPoolExecutor`` does not (open the tally inside the submitted call).

    >>> with verify_tally() as tally:
    ...     answers_equal("5", "5")
    True
    >>> tally.timeouts
    0
    """
    tally = VerifyTally()
    token = _TALLIES.set((*_TALLIES.get(), tally))
    try:
        yield tally
    finally:
        _TALLIES.reset(token)


def judge_answers(pred: str | None, gold: str | None, timeout: float = DEFAULT_TIMEOUT_S) -> Verdict:
    """Whether ``pred`` is mathematically equal to ``gold``: EQUAL, UNEQUAL, or TIMEOUT (no verdict).

    Plain numbers are decided exactly here (``"$1,200"`` == ``"1200.0"``, ``"\\\\frac{3}{4}"`` ==
    ``"0.75"``, ``"50%"`` == ``"50"`` == ``"0.5"``, ``"1e3"`` == ``"1000"``, ``"2 1/2"`` == ``"2.5"``);
    the rest by math-verify in a helper process, after TeX's reading of unbraced arguments
    (``"\\\\frac123"`` is 3/2, see ``reward_fns.latex``). Two different units are unequal (``"5 cm"`` vs
    ``"5 m"``, see ``reward_fns.units``). ``timeout`` bounds the symbolic check's own compute
    (see ``reward_fns.verify_pool``); a bad bound (not a number, <= 0, nan, inf, above 600 s)
    raises ValueError, anything else never raises. None, empty, non-string or
    longer-than-``MAX_ANSWER_CHARS`` input is UNEQUAL. A TIMEOUT is also recorded in every open
    ``verify_tally()``.

    >>> judge_answers("x = \\\\dfrac{3}{4}", "0.75"), judge_answers("5 cm", "5 m")
    (<Verdict.EQUAL: 'equal'>, <Verdict.UNEQUAL: 'unequal'>)
    """
    seconds = check_time_bound(timeout)
    try:
        if not isinstance(pred, str) or not isinstance(gold, str):
            return Verdict.UNEQUAL
        pred, gold = pred.strip(), gold.strip()
        if not pred or not gold or len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
            return Verdict.UNEQUAL
        # one reading of every script's digits, fraction and Roman numeral characters for the unit
        # check and math-verify too, not only for plain numbers ("½ + ½" is 1, "1½ cm" is not "1.5 m")
        pred, gold = ascii_number_forms(pred), ascii_number_forms(gold)
        pred, gold = normalize_tex_arguments(pred), normalize_tex_arguments(gold)
        if units_differ(pred, gold):
            return Verdict.UNEQUAL
        a, b = parse_plain_number(pred), parse_plain_number(gold)
        if a is not None and b is not None:  # the common case: no further parsing
            return Verdict.EQUAL if _plain_equal(a, b) else Verdict.UNEQUAL
        if is_undefined_number(pred) or is_undefined_number(gold):  # NaN != NaN; 1/0 is no value
            return Verdict.UNEQUAL
        # One side is a plain number: math-verify gets it as we read it ("1 quadrillion" -> 10**15).
        outcome = get_pool().verify(_as_latex(b, gold), _as_latex(a, pred), seconds)
    except Exception:  # a reward must not crash a training step; the log says why, the tally counts it
        logger.warning("answer check failed on pred=%.80r gold=%.80r", pred, gold, exc_info=True)
        outcome = Verdict.TIMEOUT
    if outcome is Verdict.TIMEOUT:
        for tally in _TALLIES.get():
            tally.add_timeout()
    return outcome


def answers_equal(pred: str | None, gold: str | None, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
    """``judge_answers(pred, gold, timeout) is Verdict.EQUAL``: for callers that need a yes/no.

    A timeout is "no" here but is recorded in every open ``verify_tally()`` (and logged), so the
    caller can still count it.

    >>> answers_equal("x = \\\\dfrac{3}{4}", "0.75"), answers_equal("5", "6")
    (True, False)
    """
    return judge_answers(pred, gold, timeout) is Verdict.EQUAL


def math_accuracy(response: str, gold: str, timeout: float = DEFAULT_TIMEOUT_S) -> float:
    """1.0 when the response's final answer equals ``gold``, else 0.0 (a timeout is recorded as in ``answers_equal``).

    ``gold`` may be a bare answer or a full reference solution (its ``\\\\boxed{}`` or ``####`` is used).

    >>> math_accuracy("... so she has 18 eggs left.\\n#### 18", "18")
    1.0
    """
    check_time_bound(timeout)
    if isinstance(gold, str) and ("\\boxed" in gold or "\\fbox" in gold or "####" in gold):
        gold = extract_answer(gold)
    return 1.0 if answers_equal(extract_answer(response), gold, timeout) else 0.0


def warm_up() -> None:
    """Start a math-verify helper now (optional; the first non-numeric comparison does it otherwise)."""
    get_pool().warm_up()


def _as_latex(number: PlainNumber | None, text: str) -> str:
    """A plain number's value in a form math-verify reads exactly (``text`` itself for a percentage,
    or when it is not a plain number)."""
    if number is None or number.is_percent:
        return text
    value = number.value
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    if number.is_decimal:  # a finite decimal: keep it one, so math-verify rounds it as it would the text
        places = 0
        while (value * 10**places).denominator != 1:
            places += 1
        digits = str(abs(value.numerator) * (10**places // value.denominator)).rjust(places + 1, "0")
        return f"{sign}{digits[:-places]}.{digits[-places:]}"
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _plain_equal(a: PlainNumber, b: PlainNumber) -> bool:
    """Exact verdict on two plain numbers; a long decimal covers its rounding (``FLOAT_ROUNDING``)."""
    return any(
        x == y or abs(x - y) <= max(x_slack, y_slack)
        for x, x_slack in _readings(a, b)
        for y, y_slack in _readings(b, a)
    )


def _readings(n: PlainNumber, other: PlainNumber) -> tuple[tuple[Fraction, Fraction], ...]:
    """(value, rounding slack) pairs; a percentage reads as its number or its fraction ("50%" is 50
    and 0.5) unless both are %, its fraction having two more places."""
    readings = [(n.value, n.places)]
    if n.is_percent and not other.is_percent:
        readings.append((n.value / 100, n.places + 2))
    return tuple((value, _rounding_slack(n, places)) for value, places in readings)


def _rounding_slack(n: PlainNumber, places: int) -> Fraction:
    """Half a unit of the last place of a decimal written to ``FLOAT_ROUNDING`` places or more, else 0."""
    if not n.is_decimal or places < FLOAT_ROUNDING:
        return Fraction(0)
    return Fraction(1, 2 * 10**places)
