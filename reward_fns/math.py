"""Math answer checking: extract a final answer, compare two answers, score a response.

Plain numbers (the bulk of DuPO's dual reconstructions) are compared exactly in-process; anything
else goes to math-verify in a time-bounded helper process (see ``reward_fns.verify_pool``).
"""

from __future__ import annotations

import logging
from fractions import Fraction

from reward_fns.extraction import MAX_ANSWER_CHARS, extract_answer
from reward_fns.numbers import PlainNumber, parse_number, parse_plain_number
from reward_fns.verify_pool import get_pool

__all__ = ["answers_equal", "extract_answer", "math_accuracy", "parse_number", "warm_up"]

logger = logging.getLogger(__name__)

FLOAT_ROUNDING = 6  # decimals compared to 6 places, as math-verify does: 0.333333 == 1/3


def answers_equal(pred: str | None, gold: str | None, timeout: float = 2.0) -> bool:
    """Whether ``pred`` is mathematically equal to ``gold``; never raises.

    Plain numbers are decided exactly here (``"$1,200"`` == ``"1200.0"``, ``"\\\\frac{3}{4}"`` ==
    ``"0.75"``, ``"50%"`` == ``"50"`` == ``"0.5"``); the rest by math-verify in a helper process,
    whose run is cut off after ``timeout`` seconds (counted as not equal) from any thread. None,
    empty, non-string or longer-than-``MAX_ANSWER_CHARS`` input is "not equal".

    >>> answers_equal("x = \\\\dfrac{3}{4}", "0.75"), answers_equal("5", "6")
    (True, False)
    """
    try:
        if not isinstance(pred, str) or not isinstance(gold, str):
            return False
        pred, gold = pred.strip(), gold.strip()
        if not pred or not gold or len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
            return False
        verdict = _plain_verdict(pred, gold)
        if verdict is not None:
            return verdict
        return get_pool().verify(gold, pred, float(timeout))
    except Exception:  # a reward must not crash a training step; the log says why
        logger.warning("answers_equal failed on pred=%.80r gold=%.80r", pred, gold, exc_info=True)
        return False


def math_accuracy(response: str, gold: str) -> float:
    """1.0 when the response's final answer equals ``gold``, else 0.0.

    ``gold`` may be a bare answer or a full reference solution (its ``\\\\boxed{}`` or ``####`` is used).

    >>> math_accuracy("... so she has 18 eggs left.\\n#### 18", "18")
    1.0
    """
    if isinstance(gold, str) and ("\\boxed" in gold or "\\fbox" in gold or "####" in gold):
        gold = extract_answer(gold)
    return 1.0 if answers_equal(extract_answer(response), gold) else 0.0


def warm_up() -> None:
    """Start a math-verify helper now (optional; the first non-numeric comparison does it otherwise)."""
    get_pool().warm_up()


def _plain_verdict(pred: str, gold: str) -> bool | None:
    """Exact verdict when both sides are plain numbers, else None (undecided here)."""
    a = parse_plain_number(pred)
    if a is None:
        return None
    b = parse_plain_number(gold)
    if b is None:
        return None
    rounded = a.is_decimal or b.is_decimal
    return any(_same(x, y, rounded) for x in _readings(a, b) for y in _readings(b, a))


def _readings(n: PlainNumber, other: PlainNumber) -> tuple[Fraction, ...]:
    """A percentage matches either its number or its fraction ("50%" is 50 and 0.5) unless both are %."""
    if n.is_percent and not other.is_percent:
        return (n.value, n.value / 100)
    return (n.value,)


def _same(x: Fraction, y: Fraction, rounded: bool) -> bool:
    if x == y:
        return True
    return rounded and round(x, FLOAT_ROUNDING) == round(y, FLOAT_ROUNDING)
