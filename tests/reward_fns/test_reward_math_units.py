"""extract_answer, parse_number and answers_equal on the forms models actually write."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import pytest

import reward_fns.math as rmath
from reward_fns.math import answers_equal, extract_answer, math_accuracy, parse_number


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("so $x = \\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("nested \\boxed{\\{1, \\{2\\}\\}} ok", "\\{1, \\{2\\}\\}"),
        ("\\boxed{\\boxed{7}}", "7"),
        ("\\fbox{12}", "12"),
        ("\\boxed 5$ done", "5"),
        ("complete \\boxed{4} then broken \\boxed{5", "4"),
        ("She has 3 + 4 = 7.\n#### 1,200", "1,200"),
        ("Thus the answer is $\\frac{1}{2}$.", "\\frac{1}{2}"),
        ("The final answer is: **42 apples**.", "42 apples"),
        ("Answer: 3.5.", "3.5"),
        ("I got 3, then 4.5, then 7/8.", "7/8"),
        ("<think>maybe 9</think> it is 10 or so", "10"),
        ("no numbers at all", None),
        ("", None),
        ("\\boxed{}", None),
    ],
)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", Fraction(5)),
        ("-2", Fraction(-2)),
        ("+7", Fraction(7)),
        ("\u22123", Fraction(-3)),
        ("5.0", Fraction(5)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("1,200", Fraction(1200)),
        ("1,234,567.25", Fraction(123456725, 100)),
        ("1{,}200", Fraction(1200)),
        ("1\\,200", Fraction(1200)),
        ("3/4", Fraction(3, 4)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("\\dfrac{3}{4}", Fraction(3, 4)),
        ("\\tfrac34", Fraction(3, 4)),
        ("-\\frac{1}{2}", Fraction(-1, 2)),
        ("\\frac{-1}{2}", Fraction(-1, 2)),
        ("50%", Fraction(50)),
        ("12.5\\%", Fraction(25, 2)),
        ("$5", Fraction(5)),
        ("\\$1,200.50", Fraction(2401, 2)),
        ("$-5", Fraction(-5)),
        ("-$5", Fraction(-5)),
        ("$\\frac{1}{2}$", Fraction(1, 2)),
        ("5 cm", Fraction(5)),
        ("5 square feet", Fraction(5)),
        ("5\\text{ apples}", Fraction(5)),
        ("90^\\circ", Fraction(90)),
        ("90^{\\circ}", Fraction(90)),
        ("x = 5", Fraction(5)),
        ("V_{sk} = 5", Fraction(5)),
        ("\\boxed{5}", Fraction(5)),
        ("\\text{5}", Fraction(5)),
        ("{5}", Fraction(5)),
        ("5 apples.", Fraction(5)),
        ("12.5 percent", Fraction(25, 2)),
        ("1e5", Fraction(100000)),  # issue 16: scientific notation, mixed numbers, scale words
        ("1\\frac{1}{2}", Fraction(3, 2)),
        ("5 million", Fraction(5000000)),
    ],
)
def test_parse_number_reads_plain_numbers(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "-", "%", "x", "5x", "5 x", "5 pi", "2\\pi", "x^2", "1,2", "1,20", "(1,2)", "\\{5\\}", "1/0",
     "\\frac{1}{0}", "1e999", "2 3/2", "--5", "5 and 6", "x=5, y=3", "\\sqrt{4}", "five", "5" * 300,
     "5 thousand million", "5 squared", "3 dozen", "5%%", "\\frac123"],
)
def test_parse_number_refuses_everything_else(text):
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("5", "5"), ("5.0", "5"), ("$5", "5"), ("\\$5.00", "5"), ("1,200", "1200"), ("1200.0", "1,200"),
        ("3/4", "0.75"), ("\\frac{3}{4}", "3/4"), ("\\dfrac{3}{4}", "0.75"), ("50%", "50"), ("50\\%", "0.5"),
        ("-2", "-2"), ("x = 5", "5"), ("\\boxed{5}", "5"), ("5 cm", "5"), ("5\\text{ dollars}", "5"),
        ("0.333333", "\\frac{1}{3}"), ("90^\\circ", "90"), ("12.5%", "12.5"),
    ],
)
def test_plain_numbers_equal_without_any_helper_process(pred, gold, monkeypatch):
    def no_pool():
        raise AssertionError("plain numbers must be decided in-process")

    monkeypatch.setattr(rmath, "get_pool", no_pool)
    assert answers_equal(pred, gold) is True


@pytest.mark.parametrize(
    ("pred", "gold"),
    [("6", "5"), ("-5", "5"), ("0.33", "\\frac{1}{3}"), ("3/4", "4/3"), ("1200", "120"), ("0.5%", "50"),
     ("50%", "5"), ("x = 6", "5"), ("5.000001", "5")],
)
def test_plain_numbers_unequal_without_any_helper_process(pred, gold, monkeypatch):
    monkeypatch.setattr(rmath, "get_pool", lambda: pytest.fail("plain numbers must be decided in-process"))
    assert answers_equal(pred, gold) is False


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("\\sqrt{25}", "5", True),
        ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", True),
        ("(x+1)^2", "x^2+2x+1", True),
        ("\\left(3, \\frac{\\pi}{2}\\right)", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
        ("\\text{(C)}", "\\text{(C)}", True),
        ("\\sqrt{26}", "5", False),
        ("(1,2)", "(2,1)", False),
        ("2\\pi", "\\pi", False),
    ],
)
def test_symbolic_answers_go_through_math_verify(pred, gold, expected):
    assert answers_equal(pred, gold) is expected


@pytest.mark.parametrize("bad", [None, "", "   ", 5, b"5", ["5"], "5" * 5000, "?!?", "\\frac{"])
def test_garbage_is_never_equal_and_never_raises(bad):
    assert answers_equal(bad, "5") is False
    assert answers_equal("5", bad) is False


def test_math_accuracy_scores_a_response_against_a_bare_gold_or_a_solution():
    assert math_accuracy("3 + 4 = 7, so \\boxed{7}.", "7") == 1.0
    assert math_accuracy("3 + 4 = 8, so \\boxed{8}.", "7") == 0.0
    assert math_accuracy("The answer is 7.", "Add: 3 + 4 = 7.\n#### 7") == 1.0
    assert math_accuracy("nothing here", "7") == 0.0


def test_reward_fns_never_imports_verl_or_dupo_verl():
    code = (
        "import sys, reward_fns, reward_fns.math, reward_fns.text, reward_fns.structured, reward_fns.shaping;"
        "bad = [m for m in sys.modules if m == 'verl' or m.startswith(('verl.', 'dupo_verl'))];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
