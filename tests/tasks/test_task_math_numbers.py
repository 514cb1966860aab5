"""Number finding and the exclusion rules of the math dual, on handwritten problems."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dupo_verl.tasks.math_numbers import REASONS, maskable_numbers, scan_numbers


def numbers(text: str) -> list[tuple[str, str, str | None]]:
    """(text as written, value, reason) for every number."""
    return [(text[s.start : s.end], s.value, s.excluded) for s in scan_numbers(text)]


def reason_of(text: str, written: str) -> str | None:
    found = [r for w, _, r in numbers(text) if w == written]
    assert found, f"{written!r} not found among {numbers(text)}"
    return found[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Janet's ducks lay 16 eggs.", [("16", "16")]),
        ("It costs $2.50 or .5 dollars.", [("2.50", "2.50"), (".5", "0.5")]),
        ("He buys a house for $80,000 and sells it.", [("80,000", "80000")]),
        ("Total 1,450,000 people.", [("1,450,000", "1450000")]),
        (r"We have $1{,}000$ and $24,\!000$.", [("1{,}000", "1000"), (r"24,\!000", "24000")]),
        ("The low was -48 degrees.", [("-48", "-48")]),
        ("Solve $x = -3$.", [("-3", "-3")]),
        ("Prices rose 25% and then 10\\%.", [("25", "25"), ("10", "10")]),
        (r"Convert $\frac{3}{4}$ to a decimal.", [("3", "3"), ("4", "4")]),
        ("Find $x - 3$.", [("3", "3")]),  # binary minus: the sign is not part of the number
        (r"$\pi - 3$", [("3", "3")]),
        # GSM8K writes "$400 000" four times; "000" alone was hidden (a dual asking for "000")
        ("go beyond her $400 000 budget.", [("400 000", "400000")]),
        ("A rope is 1\u202f000 m and 12\u00a0345.5 cm.", [("1\u202f000", "1000"), ("12\u00a0345.5", "12345.5")]),
        ("He bought 3 100-page books.", [("3", "3"), ("100", "100")]),
        ("Buy 2 100g bags.", [("2", "2")]),  # 100g: attached to a word, not a group of 2
        ("Add 7 12 times.", [("7", "7"), ("12", "12")]),
    ],
)
def test_number_forms(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(w, v) for w, v, r in numbers(text) if r is None] == expected


def test_tuples_are_not_thousands() -> None:
    assert [(w, v) for w, v, _ in numbers("the interval $[-500,500]$")] == [("-500", "-500"), ("500", "500")]
    assert [v for _, v, _ in numbers("the point $(1,000)$")][:1] == ["1"]
    assert [v for _, v, _ in numbers("for 3 each, 1,450,000 total")] == ["3", "1450000"]


@pytest.mark.parametrize(
    ("text", "written", "reason"),
    [
        # subscripts
        ("Let $x_1 + x_2 = 7$.", "1", "subscript"),
        ("Let $a_{12} = 7$.", "12", "subscript"),
        ("Let $a_{n+1} = 2a_n$.", "1", "subscript"),
        (r"$\log_{10} x = 2$", "10", "subscript"),
        # inequality constraints
        (r"Suppose $x \le 5$.", "5", "inequality"),
        ("For $0 < n < 100$, count them.", "0", "inequality"),
        ("For $0 < n < 100$, count them.", "100", "inequality"),
        (r"where $0 \le \theta < 2 \pi$.", "2", "inequality"),
        (r"if $x \geq -2$", "-2", "inequality"),
        (r"with $x \neq 4$", "4", "inequality"),
        # common exponential bases
        ("Compute $2^n$ for all n.", "2", "exponent_base"),
        ("Compute $10^k + 1$.", "10", "exponent_base"),
        ("Compute $3^{2n+1}$.", "3", "exponent_base"),
        # function arguments
        ("Find $f(3)$.", "3", "function_argument"),
        ("Find $g(x+1)$ at $x=2$.", "1", "function_argument"),
        ("Find $f^{-1}(6)$.", "-1", "function_argument"),
        ("Find $f^{-1}(6)$.", "6", "function_argument"),
        (r"Find $\sin 30^\circ$.", "30", "function_argument"),
        (r"Find $\log_2 8$.", "8", "function_argument"),
        ("Find gcd(12, 18).", "18", "function_argument"),
        (r"Find $\operatorname{lcm}(4,6)$.", "6", "function_argument"),
        # \begin{..} names and other LaTeX names
        (r"\begin{array}{c2} 1 \end{array}", "2", "latex_name"),
        (r"\begin{equation1} x \end{equation1}", "1", "latex_name"),
        (r"a \\[2mm] b = 7", "2", "latex_name"),
        (r"\hspace{3cm} then 7", "3", "latex_name"),
        # units
        (r"An area of 5 $\text{cm}^2$.", "2", "unit_exponent"),
        ("An area of 5 cm^2.", "2", "unit_exponent"),
        (r"A volume of 8 $\mbox{m}^{3}$.", "3", "unit_exponent"),
        # replacements that would break the LaTeX or read as another token
        ("Find $x^2$.", "2", "latex_break"),
        (r"Find $\frac12$.", "12", "latex_break"),
        (r"Find $\frac{1}2$.", "2", "latex_break"),
        (r"Find $\frac 34$.", "34", "latex_break"),
        (r"Find $5\cdot3$.", "3", "latex_break"),
        (r"Find $\sqrt2$.", "2", "latex_break"),
        (r"Write $0.\overline{3}$ as a fraction.", "3", "latex_break"),
        ("Find $3x + 1 = 7$.", "3", "attached_to_word"),
        ("The 2nd row.", "2", "attached_to_word"),
        ("Find $x2$.", "2", "attached_to_word"),
        # Asymptote figure code
        ("[asy] draw((0,0)--(3,4)); [/asy] The side is 5.", "3", "asy_code"),
    ],
)
def test_exclusion_rules(text: str, written: str, reason: str) -> None:
    assert reason in REASONS
    assert reason_of(text, written) == reason


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("Find $3^2$.", "3"),  # numeric exponent: the base is a plain number
        ("Find $2^{10}$.", "10"),  # a braced exponent can be a name
        ("Find $2^{10}$.", "2"),
        (r"Angle $ABC$ is $30^\circ$.", "30"),  # degrees are not powers
        ("The point $(0,3)$ lies on it.", "3"),  # coordinates are not function arguments
        ("Find $x(3)$.", "3"),  # x( is a product, not a function
        (r"$\begin{pmatrix} 1 & 2 \end{pmatrix}$", "2"),  # matrix entries are data
        (r"$\sqrt[3]{8}$", "3"),  # a root index in brackets
        ("The side is 5. [asy] draw((0,0)--(3,4)); [/asy]", "5"),
        (r"Evaluate $m^{4}+1$ at $m=2$.", "4"),  # braced exponent of a variable
    ],
)
def test_maskable_cases(text: str, written: str) -> None:
    assert reason_of(text, written) is None


def test_the_masked_text_only_changes_at_the_number() -> None:
    text = r"If $AB=5$, $BC=9$ and a $3 \times 4$ grid has $x_1 < 7$, find $f(2) + 10^{-3}$."
    for span in maskable_numbers(text):
        masked = text[: span.start] + "Vqx" + text[span.end :]
        assert masked.replace("Vqx", text[span.start : span.end], 1) == text
    assert {text[s.start : s.end] for s in maskable_numbers(text)} == {"5", "9", "3", "4", "10", "-3"}


def test_no_digits_means_no_numbers() -> None:
    assert scan_numbers("What is the value of $x$?") == []


@given(st.integers(1000, 10**12), st.sampled_from([" ", "\u00a0", "\u2009", "\u202f"]), st.sampled_from(["$", "", "about "]))
@settings(max_examples=150, deadline=None)
def test_an_si_grouped_number_is_one_number_with_its_value(number: int, space: str, prefix: str) -> None:
    grouped = f"{number:,}".replace(",", space)
    text = f"She paid {prefix}{grouped} for it and 3 more."
    found = [(w, v) for w, v, r in numbers(text) if r is None]
    assert found == [(grouped, str(number)), ("3", "3")]
    assert all(len(v.lstrip("-")) > 3 or v == "3" for _, v, _ in numbers(text))  # never "000" alone
