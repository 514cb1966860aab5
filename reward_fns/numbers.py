"""Exact parsing of plain numbers as models write them, so most answer checks never touch sympy.

A "plain number" is one value with optional dressing: ``5``, ``-2``, ``5.0``, ``.5``, ``1,200``,
``1{,}200``, ``3/4``, ``\\frac{3}{4}``, ``\\dfrac34``, ``50%``, ``50\\%``, ``$5``, ``\\$1,200.50``,
``5 cm``, ``5\\text{ apples}``, ``90^\\circ``, ``x = 5``, ``\\boxed{5}``, ``$\\frac{1}{2}$``.
Anything else (expressions, tuples, mixed numbers, scientific notation) is not a plain number and
is left to the symbolic checker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_NUMBER_CHARS = 200  # longer text is never a plain number; bounds every regex below
_MAX_UNWRAP = 6

# Words after a number are units ("5 apples" is 5), except these, which change its value or make
# it algebra; a single letter ("5 x", "5 i") is algebra too.
_VALUE_WORDS = frozenset(
    {"percent", "pi", "sqrt", "ln", "log", "exp", "sin", "cos", "tan", "cot", "sec", "csc", "mod", "inf", "infty",
     "squared", "cubed", "factorial", "hundred", "hundreds", "thousand", "thousands", "million", "millions",
     "billion", "billions", "trillion", "dozen", "dozens", "half", "halves", "third", "thirds", "quarter",
     "quarters", "times", "over", "plus", "minus", "root", "roots", "power"}
)
_PERCENT_WORDS = ("\\%", "%", " percent", "\\text{ percent}", "\\text{percent}")

_WRAPPERS = (
    re.compile(r"\\(?:boxed|fbox)\s*\{(.*)\}", re.S),
    re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{(.*)\}", re.S),
    re.compile(r"\$\$(.*)\$\$", re.S),
    re.compile(r"\$(.*)\$", re.S),
    re.compile(r"\\\((.*)\\\)", re.S),
    re.compile(r"\\\[(.*)\\\]", re.S),
    re.compile(r"\{(.*)\}", re.S),
)
_ASSIGNMENT = re.compile(r"\\?[A-Za-z]+(?:_\{?[A-Za-z0-9]+\}?)?\s*=\s*(.*)", re.S)
_TRAILING_UNIT = re.compile(
    r"(?:\s*\\(?:text|textrm|mathrm|mbox)\s*\{[^{}]*\}"  # \text{ cm}
    r"|\s*\^\s*\{?\s*\\circ\s*\}?"  # ^\circ, ^{\circ}
    r"|\s*°"
    r"|\s+([A-Za-z]{2,})"  # " cm", " apples" (group 1 checked against _MATH_WORDS)
    r"|\s*\\[,;!: ]"  # trailing thin spaces
    r"|\s*[.;,]"  # sentence punctuation
    r")$"
)
_GROUP_SEP = re.compile(r"(?<=[0-9])(?:\{,\}|\\,|\\!|\\ |\\;)(?=[0-9]{3}(?![0-9]))")
_DECIMAL = re.compile(r"(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.(?P<frac>[0-9]*))?")
_SLASH_FRACTION = re.compile(r"(?P<num>[0-9]+)\s*/\s*(?P<den>[0-9]+)")
_TEX_FRACTION = re.compile(
    r"\\[dt]?frac\s*(?:\{\s*(?P<num>[+-]?[0-9]+)\s*\}|(?P<num1>[0-9]))"
    r"\s*(?:\{\s*(?P<den>[+-]?[0-9]+)\s*\}|(?P<den1>[0-9]))"
)


@dataclass(frozen=True)
class PlainNumber:
    """A parsed plain number; ``is_decimal`` and ``is_percent`` keep how it was written."""

    value: Fraction
    is_decimal: bool = False
    is_percent: bool = False


def parse_number(text: str) -> Fraction | None:
    """The exact value of a plain number, or None when ``text`` is anything else.

    Percent signs are dropped (``"50%"`` -> 50), as a masked "50" in "a 50% discount" is recovered
    as "50%" as often as "50".

    >>> parse_number("\\\\$1,200.50"), parse_number("\\\\frac{3}{4}"), parse_number("x^2")
    (Fraction(2401, 2), Fraction(3, 4), None)
    """
    parsed = parse_plain_number(text)
    return None if parsed is None else parsed.value


def parse_plain_number(text: str) -> PlainNumber | None:
    """Like :func:`parse_number` but keeps whether the number was a decimal or a percentage."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    if not s or len(s) > MAX_NUMBER_CHARS:
        return None
    s = _unwrap(s)
    if s is None:
        return None
    percent = False
    for _ in range(_MAX_UNWRAP):  # "50\\%", "5 cm", "12.5 percent", "5\\text{ m}." from the right
        suffix = next((w for w in _PERCENT_WORDS if s.endswith(w)), None)
        if suffix is not None:
            if percent:
                return None
            percent = True
            s = s[: -len(suffix)].rstrip()
            continue
        stripped = _strip_unit(s)
        if stripped == s:
            break
        s = stripped
    s = _unwrap(s)
    if s is None:
        return None
    sign, s = _take_sign(s)
    if s.startswith("\\$"):
        s = s[2:].lstrip()
    elif s.startswith("$"):
        s = s[1:].lstrip()
    inner_sign, s = _take_sign(s)  # "$-5" has its sign after the currency symbol
    if sign == -1 and inner_sign == -1:
        return None
    sign *= inner_sign
    core = _parse_core(s)
    if core is None:
        return None
    value, is_decimal = core
    return PlainNumber(sign * value, is_decimal, percent)


def _take_sign(s: str) -> tuple[int, str]:
    if s.startswith(("-", "\u2212")):
        return -1, s[1:].lstrip()
    if s.startswith("+"):
        return 1, s[1:].lstrip()
    return 1, s


def _unwrap(s: str) -> str | None:
    """Peel whole-string wrappers (boxes, math delimiters, braces, ``x =``) from the outside in."""
    for _ in range(_MAX_UNWRAP):
        s = s.strip()
        if not s:
            return None
        for pattern in _WRAPPERS:
            m = pattern.fullmatch(s)
            if m and _balanced(m.group(1)):
                s = m.group(1)
                break
        else:
            m = _ASSIGNMENT.fullmatch(s)
            if m is None or "=" in m.group(1):
                return s
            s = m.group(1)
    return s.strip() or None


def _balanced(s: str) -> bool:
    """Braces nest properly and unescaped ``$`` come in pairs (so ``$a$ + $b$`` is not one wrap)."""
    depth = dollars = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return False
        elif c == "$":
            dollars += 1
        i += 1
    return depth == 0 and dollars % 2 == 0


def _strip_unit(s: str) -> str:
    """``s`` without one trailing unit, degree sign or punctuation mark (if it ends with one)."""
    m = _TRAILING_UNIT.search(s)
    if m is None or m.start() == 0:
        return s
    word = m.group(1)
    if word is not None and word.lower() in _VALUE_WORDS:
        return s
    return s[: m.start()].rstrip()


def _parse_core(s: str) -> tuple[Fraction, bool] | None:
    s = _GROUP_SEP.sub(",", s)
    m = _TEX_FRACTION.fullmatch(s)
    if m:
        den = int(m.group("den") or m.group("den1"))
        return None if den == 0 else (Fraction(int(m.group("num") or m.group("num1")), den), False)
    m = _SLASH_FRACTION.fullmatch(s)
    if m:
        den = int(m.group("den"))
        return None if den == 0 else (Fraction(int(m.group("num")), den), False)
    m = _DECIMAL.fullmatch(s)
    if m is None:
        return None
    int_part, frac_part = m.group("int").replace(",", ""), m.group("frac")
    if not int_part and not frac_part:
        return None
    if frac_part is None:
        return Fraction(int(int_part)), False
    value = Fraction(int(int_part or "0"))
    if frac_part:
        value += Fraction(int(frac_part), 10 ** len(frac_part))
    return value, True
