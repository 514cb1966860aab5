"""The math checker on real data: MATH-500 gold solutions, GSM8K answers, and wrong answers."""

from __future__ import annotations

import json
import warnings
from fractions import Fraction
from pathlib import Path

import pytest

from reward_fns.math import answers_equal, extract_answer, parse_number


def _rows(shared_data: Path, name: str) -> list[dict]:
    path = shared_data / "math" / name
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _report(title: str, misses: list[tuple]) -> str:
    lines = [f"{title}: {len(misses)}"] + [f"  {m!r}" for m in misses]
    text = "\n".join(lines)
    print(text)  # shows with -s; the warning and the assert message show without it
    if misses:
        warnings.warn(text, stacklevel=2)
    return text


@pytest.fixture(scope="module")
def math500(shared_data: Path) -> list[dict]:
    rows = _rows(shared_data, "math500_test.jsonl")
    assert len(rows) == 500
    return rows


@pytest.fixture(scope="module")
def gsm8k(shared_data: Path) -> list[dict]:
    rows = _rows(shared_data, "gsm8k_test.jsonl")
    assert len(rows) == 1319
    return rows


def test_math500_boxed_answer_of_each_gold_solution_equals_the_recorded_answer(math500):
    misses = []
    for row in math500:
        pred = extract_answer(row["solution"])
        if not answers_equal(pred, row["answer"]):
            misses.append((row["id"], pred, row["answer"]))
    report = _report("MATH-500 gold solutions judged unequal to their recorded answer", misses)
    assert len(misses) <= 0.01 * len(math500), report


def _word_free_forms(value: int) -> list[str]:
    """The same integer as models write it: separators, a trailing .0, a currency sign."""
    sign, body = ("-" if value < 0 else ""), abs(value)
    return [
        f"{sign}{body}",
        f"{sign}{body:,}",
        f"{sign}{body}.0",
        f"{sign}{body:,}.00",
        f"{sign}${body:,}",
        f"{sign}\\${body}",
        f"${sign}{body}$",
        f"\\boxed{{{sign}{body:,}}}",
    ]


def test_gsm8k_hash_answer_equals_itself_written_as_plain_numbers(gsm8k):
    misses = []
    for row in gsm8k:
        extracted = extract_answer(row["solution"])
        value = int(row["answer"])
        if not answers_equal(extracted, row["answer"]):
            misses.append((row["id"], "extracted", extracted, row["answer"]))
        for form in _word_free_forms(value):
            if not answers_equal(form, extracted):
                misses.append((row["id"], "form", form, extracted))
    report = _report("GSM8K #### answers judged unequal to a rewriting of themselves", misses)
    assert not misses, report


def _plus_one(answer: str) -> str | None:
    value = parse_number(answer)
    if value is None:
        return None
    value += 1
    return str(value.numerator) if value.denominator == 1 else f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _other_answer(rows: list[dict], i: int) -> str:
    """The next row's answer that is different: another string and, when both are numbers, another value."""
    mine = rows[i]["answer"].strip()
    for step in range(1, len(rows)):
        other = rows[(i + step) % len(rows)]["answer"].strip()
        a, b = parse_number(mine), parse_number(other)
        if other != mine and not (a is not None and a == b):
            return other
    raise AssertionError("no different answer in the whole file")


@pytest.mark.parametrize("dataset", ["math500", "gsm8k"])
def test_wrong_answers_are_unequal_on_every_row(dataset, request):
    rows = request.getfixturevalue(dataset)
    false_equal = []
    numeric = 0
    for i, row in enumerate(rows):
        wrong = _plus_one(row["answer"])
        if wrong is not None:
            numeric += 1
            if answers_equal(wrong, row["answer"]):
                false_equal.append((row["id"], "gold+1", wrong, row["answer"]))
        other = _other_answer(rows, i)
        if answers_equal(other, row["answer"]):
            false_equal.append((row["id"], "other row", other, row["answer"]))
    report = _report(f"{dataset}: wrong answers judged equal", false_equal)
    assert numeric >= (len(rows) if dataset == "gsm8k" else 300), numeric
    assert not false_equal, report


def test_gsm8k_answers_are_all_plain_numbers_for_the_fast_path(gsm8k):
    assert all(parse_number(row["answer"]) == Fraction(int(row["answer"])) for row in gsm8k)
