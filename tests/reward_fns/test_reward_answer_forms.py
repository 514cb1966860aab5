"""Issue 16, class 7: answer extraction and equality on the forms the issue names, each decision
tested in both directions (and both argument orders), plus property tests per form.

Decisions (reasons in reward_fns.numbers, reward_fns.latex and reward_fns.units):
leading-dot decimals are numbers; ``1e3`` is 1000; ``2 1/2`` is the mixed number 5/2;
``\\frac123`` is TeX's ``\\frac{1}{2}3`` = 3/2; ``1 quadrillion`` is 10**15; ``5 cm`` is not ``5 m``.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reward_fns.math as rmath
from reward_fns.latex import normalize_tex_arguments
from reward_fns.math import answers_equal, extract_answer, parse_number
from reward_fns.units import answer_unit, units_differ

SETTINGS = settings(max_examples=150, deadline=None)
SYMBOLIC_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def both_ways(a: str, b: str) -> bool:
    """The verdict, checked to be the same in either argument order."""
    forward, backward = answers_equal(a, b), answers_equal(b, a)
    assert forward == backward, (a, b)
    return forward


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("The probability is .25", ".25"),
        ("so x = -.5", "-.5"),
        ("It costs .5%", ".5%"),
        ("version 1.2.5", "5"),  # not ".5": a leading dot needs no digit or dot before it
        ("the value is 1e3", "1e3"),
        ("we need 2E-3 of it", "2E-3"),
        ("add 2 1/2 cups", "2 1/2"),
        ("add 21/2 cups", "21/2"),
        ("it is 3 7/4", "7/4"),  # improper: not a mixed number
        ("5em wide", "5"),
    ],
)
def test_last_number_fallback(response, expected):
    assert extract_answer(response) == expected


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (".25", "0.25", True), ("-.5", "-0.5", True), ("x = -.5", "-\\frac{1}{2}", True), (".25", "25", False),
        ("-.5", "5", False), ("-.5", "0.5", False),
        ("1e3", "1000", True), ("1E3", "1,000", True), ("1.5e-3", "0.0015", True), ("2.5 \\times 10^{3}", "2500", True),
        ("3\\cdot 10^5", "300000", True), ("1e3", "3", False), ("1e3", "2.718281828", False),
        ("2 1/2", "2.5", True), ("2 1/2", "\\frac{5}{2}", True), ("2\\frac{1}{2}", "2.5", True),
        ("-2 1/2", "-2.5", True), ("2 1/2", "1", False), ("2 1/2", "1.5", False), ("21/2", "10.5", True),
        ("\\frac123", "\\frac{1}{2}3", True), ("\\frac123", "1.5", True), ("\\frac123", "\\frac{3}{2}", True),
        ("\\frac123", "\\frac{1}{23}", False), ("\\frac12", "0.5", True), ("\\frac{9}{3}6", "18", True),
        ("\\dfrac\\pi2", "\\frac{\\pi}{2}", True), ("\\sqrt23", "3\\sqrt{2}", True), ("\\sqrt23", "\\sqrt{23}", False),
        ("1 quadrillion", "1", False), ("1 quadrillion", "10^{15}", True), ("3 million", "3000000", True),
        ("3 million", "3", False), ("5\\text{ million}", "5", False), ("1.5 billion dollars", "1500000000", True),
        ("5 cm", "5 m", False), ("5\\text{ cm}", "5\\text{ m}", False), ("5 cm", "5", True),
        ("5 cm", "5 centimeters", True), ("5\\,\\mathrm{cm}", "5\\text{ cm}", True), ("500 cm", "5 m", False),
        ("90^\\circ", "90 degrees", True), ("90^\\circ", "90 radians", False), ("5 cm^2", "5 cm", False),
        ("5 apples", "5", True), ("5 m", "5 s", False), ("3 hours", "3 hr", True),
    ],
)
def test_decisions_both_directions(a, b, equal):
    assert both_ways(a, b) is equal


@pytest.mark.parametrize(
    ("text", "value"),
    [(".25", Fraction(1, 4)), ("-.5", Fraction(-1, 2)), ("1e3", Fraction(1000)), ("1.5e-3", Fraction(3, 2000)),
     ("2 1/2", Fraction(5, 2)), ("2\\frac{1}{2}", Fraction(5, 2)), ("1 quadrillion", Fraction(10**15)),
     ("2 hundred", Fraction(200)), ("1e400", Fraction(10**400))],
)
def test_plain_values(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["1e401", "1e-401", "2 3/2", "2 0/3", "5 thousand million", "\\frac123", "1e", "e3",
                                  "2 1/0"])
def test_not_plain_numbers(text):
    assert parse_number(text) is None


# -- properties ------------------------------------------------------------------------------------
DIGITS = st.integers(min_value=1, max_value=999_999)


@given(DIGITS, st.booleans())
@SETTINGS
def test_leading_dot_decimals_are_read_whole(digits, negative):
    text = ("-" if negative else "") + "." + str(digits)
    value = Fraction(int(str(digits)), 10 ** len(str(digits))) * (-1 if negative else 1)
    assert extract_answer(f"So the probability is {text}") == text
    assert extract_answer(f"x = {text}") == text
    assert parse_number(text) == value
    assert both_ways(text, f"\\frac{{{value.numerator}}}{{{value.denominator}}}")
    assert not both_ways(text, str(digits)) or value == digits


@given(st.integers(min_value=-10**6, max_value=10**6), st.integers(min_value=-30, max_value=30))
@SETTINGS
def test_scientific_notation_is_its_value(mantissa, exponent):
    value = Fraction(mantissa) * Fraction(10) ** exponent
    text = f"{mantissa}e{exponent}"
    assert parse_number(text) == value
    exact = f"\\frac{{{value.numerator}}}{{{value.denominator}}}" if value.denominator > 1 else str(value)
    assert both_ways(text, exact)
    assert both_ways(text, exact + "+1") is False or mantissa == 0


@given(st.integers(min_value=0, max_value=10**4), st.integers(min_value=1, max_value=50), st.data())
@SETTINGS
def test_mixed_numbers_are_whole_plus_fraction(whole, den, data):
    num = data.draw(st.integers(min_value=0, max_value=2 * den))
    value = whole + Fraction(num, den)
    text = f"{whole} {num}/{den}"
    assert parse_number(f"{whole}\\frac{{{num}}}{{{den}}}") == parse_number(text)
    if 0 < num < den:
        assert parse_number(text) == value
        assert both_ways(text, f"\\frac{{{value.numerator}}}{{{value.denominator}}}")
        assert extract_answer(f"add {text} cups of flour") == text
    else:
        assert parse_number(text) is None  # "2 3/2", "2 0/5": not how a mixed number is written


@given(st.sampled_from(["hundred", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion"]),
       st.integers(min_value=1, max_value=999))
@SETTINGS
def test_scale_words_multiply(word, n):
    scale = {"hundred": 10**2, "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12,
             "quadrillion": 10**15, "quintillion": 10**18}[word]
    assert both_ways(f"{n} {word}", str(n * scale))
    assert not both_ways(f"{n} {word}", str(n))
    assert both_ways(f"{n}\\text{{ {word}}}", f"{n * scale:,}")


_UNIT_SPELLINGS = {"cm": ["cm", "centimeters", "\\text{ cm}", "\\,\\mathrm{cm}"], "m": ["m", "meters", "\\text{ m}"],
                   "kg": ["kg", "kilograms"], "s": ["s", "seconds", "sec"], "deg": ["^\\circ", "degrees", "°"],
                   "min": ["min", "minutes"], "dollar": ["dollars", "\\text{ dollars}"]}


def _with_unit(n: int, spelling: str) -> str:
    return f"{n}{spelling}" if spelling.startswith(("\\", "^", "°")) else f"{n} {spelling}"


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(_UNIT_SPELLINGS)),
       st.sampled_from(sorted(_UNIT_SPELLINGS)), st.data())
@SETTINGS
def test_units_same_unit_equal_different_units_never(n, unit_a, unit_b, data):
    a = _with_unit(n, data.draw(st.sampled_from(_UNIT_SPELLINGS[unit_a])))
    b = _with_unit(n, data.draw(st.sampled_from(_UNIT_SPELLINGS[unit_b])))
    assert answer_unit(a) == unit_a and answer_unit(b) == unit_b
    assert units_differ(a, b) is (unit_a != unit_b)
    assert both_ways(a, b) is (unit_a == unit_b)
    assert both_ways(a, str(n))  # a unit on one side only is dressing


_TOKENS = st.sampled_from(["1", "2", "7", "x", "\\pi", "\\alpha", "{12}", "{x+1}", " 3", "{}"])


@given(st.sampled_from(["frac", "dfrac", "tfrac", "binom", "sqrt"]), _TOKENS, _TOKENS,
       st.sampled_from(["", "3", " 4", "x", "+1"]))
@SETTINGS
def test_tex_argument_bracing_is_idempotent_and_only_adds_braces(macro, first, second, rest):
    text = f"\\{macro}{first}{second}{rest}"
    once = normalize_tex_arguments(text)
    assert normalize_tex_arguments(once) == once
    assert once.replace("{", "").replace("}", "").replace("\\cdot ", "").replace(" ", "") == text.replace(
        "{", "").replace("}", "").replace(" ", "")


@given(st.integers(min_value=1, max_value=9), st.integers(min_value=2, max_value=9), st.integers(min_value=2, max_value=9))
@SYMBOLIC_SETTINGS
def test_unbraced_frac_reads_as_tex(a, b, c):
    """``\\frac abc`` is (a/b)*c, never a/(10b+c), whatever math-verify's own parser would say."""
    assert both_ways(f"\\frac{a}{b}{c}", str(Fraction(a * c, b)) if b > 1 else str(a * c))
    assert not both_ways(f"\\frac{a}{b}{c}", f"\\frac{{{a}}}{{{10 * b + c}}}")


def test_plain_forms_never_reach_the_symbolic_checker(monkeypatch):
    monkeypatch.setattr(rmath, "get_pool", lambda: pytest.fail("plain numbers must be decided in-process"))
    for a, b in [(".25", "0.25"), ("1e3", "1000"), ("2 1/2", "2.5"), ("3 million", "3000000"), ("5 cm", "5 m")]:
        both_ways(a, b)
