"""Numbers written in other scripts, with direction marks or SI spaces, and how long decimals
round: each form equals its ASCII reading in both argument orders, and nothing else.

Decisions (reasons in reward_fns.numbers and reward_fns.math.FLOAT_ROUNDING): Arabic-Indic,
Persian and full-width digits are digits; direction marks are dropped; ``1 000`` is 1000 only in
the full groups-of-three form; a decimal of 6 or more places covers its own rounding, a shorter
one and every other form are exact, so a tiny number never equals zero.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reward_fns.math import answers_equal, extract_answer, math_accuracy
from reward_fns.numbers import ascii_number_forms, parse_number

SETTINGS = settings(max_examples=150, deadline=None)
ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"
PERSIAN = "۰۱۲۳۴۵۶۷۸۹"
FULL_WIDTH = "０１２３４５６７８９"
DEVANAGARI = "०१२३४५६७८९"


def both_ways(a: str, b: str) -> bool:
    forward, backward = answers_equal(a, b), answers_equal(b, a)
    assert forward == backward, (a, b)
    return forward


def in_script(number: int, digits: str) -> str:
    return "".join(digits[int(d)] for d in str(number))


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("٤٢", "42", True), ("۴۲", "42", True), ("４２", "42", True), ("४२", "42", True),
        ("٤٢", "24", False), ("－５", "-5", True), ("－５", "5", False), ("٣٫٥", "3.5", True),
        ("1٬000", "1000", True), ("５０％", "0.5", True), ("\u200f42\u200e", "42", True),
        ("\u2067-7\u2069", "-7", True), ("\\boxed{\u200e٤٢}", "42", True),
        ("1 000", "1000", True), ("12\u00a0345.5", "12345.5", True), ("1\u202f000\u2009000", "10**6", False),
        ("1\u202f000\u2009000", "1000000", True), ("1 00", "100", False), ("10 000", "1000", False),
        ("2 1/2", "2.5", True), ("5²", "52", False),
        ("0.0000001", "0", False), ("1e-7", "0", False), ("0.0000001", "1e-7", True),
        ("0.333333", "\\frac{1}{3}", True), ("0.3333333", "1/3", True), ("0.33", "1/3", False),
        ("33.3333%", "1/3", True), ("1.0000001", "1", False), ("0.1234564", "0.123456", True),
        ("0.1234564", "0.1234565", False), ("0.666667", "2/3", True), ("0.666666", "2/3", False),
    ],
)
def test_forms(a, b, equal):
    assert both_ways(a, b) is equal


@given(st.integers(0, 10**12), st.sampled_from([ARABIC_INDIC, PERSIAN, FULL_WIDTH, DEVANAGARI]))
@SETTINGS
def test_any_script_reads_as_its_ascii_number(number, digits):
    written = in_script(number, digits)
    assert parse_number(written) == number
    assert both_ways(written, str(number))
    assert not both_ways(written, str(number + 1))
    assert extract_answer(f"so the total is {written}") == str(number)


@given(st.integers(1000, 10**15), st.sampled_from([" ", "\u00a0", "\u2009", "\u202f"]))
@SETTINGS
def test_si_grouping_is_the_number_and_a_wrong_group_is_not(number, space):
    grouped = f"{number:,}".replace(",", space)
    assert both_ways(grouped, str(number))
    assert not both_ways(grouped, str(number * 10))
    broken = grouped[:-1]  # the last group has two digits: no longer a grouped number
    assert parse_number(broken) is None or parse_number(broken) != number


@given(st.integers(7, 30), st.integers(1, 9))
@SETTINGS
def test_a_tiny_number_never_equals_zero_in_any_notation(places, digit):
    decimal = "0." + "0" * (places - 1) + str(digit)
    scientific = f"{digit}e-{places}"
    assert both_ways(decimal, scientific)
    for zero in ("0", "0.0", "0e0", "0/5"):
        assert not both_ways(decimal, zero)
        assert not both_ways(scientific, zero)
    # "0.000000" is written to 6 places: it stands for anything that rounds to it, and nothing more.
    assert both_ways(decimal, "0.000000") is (Fraction(digit, 10**places) <= Fraction(1, 2 * 10**6))


@given(st.integers(1, 10**6), st.integers(2, 10**6))
@SETTINGS
def test_a_six_place_decimal_equals_the_fraction_it_rounds_and_short_decimals_are_exact(num, den):
    rounded = f"{num / den:.6f}"
    assert both_ways(rounded, f"{num}/{den}")
    short = f"{num / den:.3f}"
    assert both_ways(short, f"{num}/{den}") is ((num * 1000) % den == 0)


def test_a_math_reward_reads_an_arabic_answer_and_the_dual_reads_a_persian_value():
    assert math_accuracy("ثم يكون الجواب \\boxed{٤٢}", "42") == 1.0
    assert math_accuracy("The answer is ۱۸.", "18") == 1.0
    assert math_accuracy("The answer is ۱۸.", "81") == 0.0


def test_other_characters_are_left_as_they_are():
    text = "5² ⅽ é ß \\frac{1}{2} abc 123"
    assert ascii_number_forms(text) == text.replace("ⅽ", "100")
    assert ascii_number_forms("a\u200fb\u202ec") == "abc"


@pytest.mark.parametrize(
    ("a", "b"), [("1/0", "1/0"), ("nan", "nan"), ("NaN", "NaN"), ("\\frac{3}{0}", "\\frac{3}{0}"), ("\\boxed{1/0}", "1/0"),
                 ("-nan", "nan"), ("5/0", "5"), ("nan", "0")],
)
def test_a_number_with_no_value_equals_nothing_not_even_itself(a, b):
    """1/0 == 1/0 and nan == nan were EQUAL (math-verify compared the text)."""
    assert not both_ways(a, b)


def test_infinity_and_zero_fractions_keep_their_values():
    assert both_ways("\\infty", "\\infty") and both_ways("0/5", "0") and both_ways("10/2", "5")


VULGAR = "¼½¾⅐⅑⅒⅓⅔⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞"
ROMAN = [(1000, "Ⅿ"), (900, "ⅭⅯ"), (500, "Ⅾ"), (400, "ⅭⅮ"), (100, "Ⅽ"), (90, "ⅩⅭ"), (50, "Ⅼ"), (40, "ⅩⅬ"),
         (10, "Ⅹ"), (9, "ⅠⅩ"), (5, "Ⅴ"), (4, "ⅠⅤ"), (1, "Ⅰ")]


def roman(number: int) -> str:
    out = ""
    for value, letters in ROMAN:
        while number >= value:
            out, number = out + letters, number - value
    return out


@pytest.mark.parametrize("char", list(VULGAR))
def test_a_fraction_character_is_its_fraction_and_a_mixed_number_after_a_whole(char):
    import unicodedata

    value = Fraction(unicodedata.numeric(char)).limit_denominator(12)
    assert parse_number(char) == value and parse_number("-" + char) == -value
    assert both_ways(char, f"{value.numerator}/{value.denominator}")
    assert both_ways(f"7{char}", str(float(7 + value)) if value.denominator in (2, 4, 5, 8) else f"7 {value}")
    assert both_ways(f"\\boxed{{7{char}}}", f"7 {value.numerator}/{value.denominator}")
    assert not both_ways(char, str(value.numerator))  # never its numerator alone
    assert extract_answer(f"so each gets 7{char} cups.") is not None
    assert math_accuracy(f"so each gets 7{char}.", str(7 + value)) == 1.0


@SETTINGS
@given(st.integers(1, 3999))
def test_roman_numeral_characters_read_as_their_value(number):
    written = roman(number)
    assert parse_number(written) == number and both_ways(written, str(number))
    assert not both_ways(written, str(number + 1))
    lower = written.translate(str.maketrans("ⅠⅤⅩⅬⅭⅮⅯ", "ⅰⅴⅹⅼⅽⅾⅿ"))
    assert parse_number(lower) == number


def test_single_character_roman_numerals_and_fraction_slashes():
    assert [parse_number(c) for c in "ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅪⅫ"] == list(range(1, 13))
    assert parse_number("1⁄2") == Fraction(1, 2) and parse_number("3∕4") == Fraction(3, 4)
    assert parse_number("↉") == 0


def test_superscripts_are_not_read_so_a_squared_unit_keeps_its_number():
    assert extract_answer("The floor is 25 m².") == "25"
    assert math_accuracy("The floor is 25 m².", "25") == 1.0
    assert not both_ways("5²", "52") and not both_ways("5²", "2")
    assert ascii_number_forms("x² + 3") == "x² + 3"


NUMBER_FORMS_BLOCK = "".join(map(chr, range(0x2150, 0x2190)))


@SETTINGS
@given(st.text(alphabet=st.sampled_from(NUMBER_FORMS_BLOCK + "0123456789 -/.٣"), max_size=30))
def test_any_text_of_number_forms_reads_without_raising(text):
    """Every character of Unicode's Number Forms block (letters such as Ↄ among them), in any order."""
    ascii_number_forms(text)
    parse_number(text)
    extract_answer(f"the answer is {text}")
    assert isinstance(answers_equal(text, "12"), bool)


@pytest.mark.parametrize(("a", "b"), [("1½ cm", "1.5 m"), ("2½ hours", "2.5 minutes"), ("Ⅻ cm", "12 m"),
                                      ("¾ kg", "0.75 g"), ("٥ cm", "5 m"), ("５ cm", "5 m"), ("10 m²", "10 m³"),
                                      ("10 m²", "10 m")])
def test_the_unit_check_reads_every_number_form(a, b):
    assert not both_ways(a, b)


@pytest.mark.parametrize(("a", "b"), [("1½ cm", "1.5 cm"), ("Ⅻ kg", "12 kg")])
def test_the_same_unit_in_any_number_form_is_equal(a, b):
    assert both_ways(a, b)


@pytest.mark.parametrize("written", ["३½", "৩½", "𝟑½", "3\u200e½", "3\u2009½", "٣½"])
def test_a_mixed_number_with_a_fraction_character_in_any_script(written):
    assert parse_number(written) == Fraction(7, 2)


@pytest.mark.parametrize("written", ["½3", "⅓2", "½½", "1Ⅻ", "Ⅻ5", "2.Ⅴ", "Ⅰ.Ⅴ", "ⅡⅢ", "ⅪⅫ", "ⅠⅡⅢ", "ⅠⅤⅩ", "ⅠⅩⅩ",
                                     "ⅠⅠⅠⅠ", "ↀↀ"])
def test_run_together_or_malformed_forms_are_no_number(written):
    assert parse_number(written) is None


@pytest.mark.parametrize(("written", "value"), [("ⅩⅣ", 14), ("ⅯⅯⅩⅩⅣ", 2024), ("ⅯⅯⅯⅯⅯⅯ", 6000), ("ⅿⅽⅿⅹⅽⅰⅹ", 1999),
                                                ("ↀ", 1000), ("ⅩⅠⅠ", 12)])
def test_roman_runs_whose_letters_spell_a_numeral(written, value):
    assert parse_number(written) == value


@pytest.mark.parametrize(("response", "gold", "paid"), [
    ("It is −3.", "3", 0.0), ("It is −3.", "-3", 1.0), ("It is −½.", "1/2", 0.0), ("We get −3½.", "-3.5", 1.0),
    ("The rate rose by 2½%.", "2.5%", 1.0), ("She walked 3\u2009½ miles.", "3.5", 1.0),
    ("He ate 2\u200f½ pies", "2.5", 1.0), ("total ½½ cups", "1", 0.0),
])
def test_extraction_keeps_signs_and_whole_parts_of_every_form(response, gold, paid):
    assert math_accuracy(response, gold) == paid


@pytest.mark.parametrize("text", ["x ½" + "9" * 5000, "x 1/" + "9" * 5000, "x " + "9" * 5000 + "/2"])
def test_extraction_of_very_long_digit_runs_does_not_raise(text):
    answer = extract_answer(text)  # int() of a 5000-digit string raises in Python: never reached
    assert answer is None or isinstance(answer, str)
    assert math_accuracy(text, "1") == 0.0


def test_math_verify_reads_the_same_forms_as_the_plain_numbers():
    assert both_ways("½ + ½", "1") and both_ways("Ⅻ + 1", "13") and both_ways("\\frac{½}{2}", "1/4")
