"""The unit an answer ends in, so that ``5 cm`` and ``5 m`` are never the same answer.

Decision (issue 16): math-verify drops a trailing unit before comparing (``5 cm`` == ``5 m``
there), and the MATH and Minerva graders delete unit words from both sides. We keep their leniency
where it is right and refuse it where it is wrong:

* a unit on one side only is dressing: ``5 cm`` == ``5`` (gold answers usually omit the unit);
* the same unit in any spelling of the table below is the same answer: ``5 cm`` == ``5\\text{
  centimeters}``, ``90^\\circ`` == ``90 degrees``;
* two different units of the table make different answers, with no conversion: ``5 cm`` !=
  ``5 m``, and also ``500 cm`` != ``5 m`` (no grader converts units either);
* words outside the table (``5 apples``) remain dressing, as before.
"""

from __future__ import annotations

import re

__all__ = ["answer_unit", "units_differ"]

_SPELLINGS: dict[str, tuple[str, ...]] = {
    "mm": ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    "cm": ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    "m": ("m", "meter", "meters", "metre", "metres"),
    "km": ("km", "kilometer", "kilometers", "kilometre", "kilometres"),
    "in": ("in", "inch", "inches"),
    "ft": ("ft", "foot", "feet"),
    "yd": ("yd", "yard", "yards"),
    "mi": ("mi", "mile", "miles"),
    "mg": ("mg", "milligram", "milligrams"),
    "g": ("g", "gram", "grams"),
    "kg": ("kg", "kilogram", "kilograms"),
    "lb": ("lb", "lbs", "pound", "pounds"),
    "oz": ("oz", "ounce", "ounces"),
    "ton": ("ton", "tons", "tonne", "tonnes"),
    "ms": ("ms", "millisecond", "milliseconds"),
    "s": ("s", "sec", "secs", "second", "seconds"),
    "min": ("min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "day": ("day", "days"),
    "week": ("week", "weeks"),
    "month": ("month", "months"),
    "year": ("yr", "yrs", "year", "years"),
    "ml": ("ml", "mL", "milliliter", "milliliters", "millilitre", "millilitres"),
    "l": ("l", "L", "liter", "liters", "litre", "litres"),
    "gal": ("gal", "gallon", "gallons"),
    "mph": ("mph",),
    "deg": ("deg", "degree", "degrees", "°", "\\circ"),
    "rad": ("rad", "radian", "radians"),
    "dollar": ("dollar", "dollars", "USD"),
    "cent": ("cent", "cents"),
}
_CANONICAL = {spelling: unit for unit, spellings in _SPELLINGS.items() for spelling in spellings}


def _power(name: str) -> str:
    return r"(?:\s*\^\s*\{?\s*(?P<" + name + r">[23])\s*\}?)?"


# After a number-like end (digit, closing brace or parenthesis): optional thin spaces, then the unit
# as \text{...}/\mathrm{...}, ^\circ, ° or a bare word, an optional ^2/^3, optional final period.
_UNIT_TAIL = re.compile(
    r"[0-9})]\s*(?:\\[,;:! ]\s*|~\s*)*"
    r"(?:\\(?:text|textrm|mathrm|mbox|operatorname)\s*\{\s*(?P<boxed>[A-Za-z°]+)" + _power("inner")
    + r"\s*\}|(?P<degree>\^\s*\{?\s*\\circ\s*\}?|°)|(?P<word>[A-Za-z]+))"
    + _power("outer") + r"\s*\.?\s*$"
)
_MAX_UNIT_INPUT = 1_000  # answers are bounded upstream; the search below only reads the tail
_TAIL_CHARS = 80


def answer_unit(answer: str) -> str | None:
    """The canonical unit ``answer`` ends in (``"cm^2"``, ``"deg"``), or None when it ends in none of the table's.

    >>> answer_unit("5\\\\text{ centimeters}^2"), answer_unit("90^\\\\circ"), answer_unit("5 apples")
    ('cm^2', 'deg', None)
    """
    if not isinstance(answer, str):
        return None
    tail = answer.strip()[-_TAIL_CHARS:]
    if not tail.isascii():  # "m²" is "m^2"
        tail = tail.replace("\u00b2", "^2").replace("\u00b3", "^3")
    m = _UNIT_TAIL.search(tail)
    if m is None:
        return None
    if m.group("degree"):
        unit = "deg"
    else:
        spelling = m.group("boxed") or m.group("word")
        unit = _CANONICAL.get(spelling) or (_CANONICAL.get(spelling.lower()) if len(spelling) > 2 else None)
        if unit is None:
            return None
    power = m.group("inner") or m.group("outer")
    return f"{unit}^{power}" if power else unit


def units_differ(a: str, b: str) -> bool:
    """True when both answers end in a unit of the table and the units differ (``5 cm`` vs ``5 m``)."""
    unit_a = answer_unit(a)
    if unit_a is None:
        return False
    unit_b = answer_unit(b)
    return unit_b is not None and unit_a != unit_b
