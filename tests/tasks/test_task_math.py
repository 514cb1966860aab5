"""The math dual task on the real problem sets (MATH-500, GSM8K, AIME 2024, AMC 2023).

The rule checks here are written independently of `math_numbers`: they look at the text around
each hidden number of each produced dual question.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from dupo_verl.tasks import get_task
from dupo_verl.tasks.math import NAME_LETTERS, fresh_names, problem_rng
from dupo_verl.tasks.templates import DUAL_QUESTIONS, PRIMAL_SUFFIX

DATASETS = ("math500_test", "gsm8k_test", "aime2024", "amc2023")
INEQUALITY = re.compile(r"<|>|≤|≥|≠|\\(?:le|leq|ge|geq|lt|gt|ne|neq)(?![A-Za-z])")
FUNCTION_HEAD = re.compile(
    r"(?:(?<![A-Za-z\\])[fghpqrsuvwFGHPQRST](?:_\{[^{}]*\}|_\w)?(?:\^\{[^{}]*\}|\^\w|'+)?(?:\\left)?"
    r"|\\(?:sin|cos|tan|log|ln|exp|gcd|lcm|max|min)\S*\s*|gcd|lcm|\\operatorname\{\w+\})$"
)
CLAUSE_END = re.compile(
    r"\$|,|;|\n|&|\\\\|\.\s|\?|\\text|\\mbox|\\quad|\b(?:and|or|if|where|for|with|then)\b"
)


def load(shared_data: Path, name: str) -> list[dict]:
    with (shared_data / "math" / f"{name}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def task():
    return get_task("math")


@pytest.fixture(scope="module")
def produced(shared_data: Path, task) -> dict[str, list[tuple[dict, list]]]:
    out = {}
    for name in DATASETS:
        rows = load(shared_data, name)
        out[name] = [
            (r, task.decompose({"problem": r["problem"], "answer": r["answer"]}, seed=0).duals) for r in rows
        ]
    return out


def hidden_span(problem: str, masked: str, variable: str) -> tuple[int, int]:
    """Where the variable stands in the original, checking nothing else changed."""
    assert masked.count(variable) == 1 and variable not in problem
    i = masked.index(variable)
    prefix, suffix = masked[:i], masked[i + len(variable) :]
    assert problem.startswith(prefix) and problem.endswith(suffix), "masked text differs elsewhere"
    assert len(prefix) + len(suffix) < len(problem)
    return len(prefix), len(problem) - len(suffix)


def unclosed(prefix: str, opener: str, closer: str) -> list[int]:
    """Positions of brackets opened in `prefix` and not closed before its end."""
    stack = []
    for i, ch in enumerate(prefix):
        if ch == opener:
            stack.append(i)
        elif ch == closer and stack:
            stack.pop()
    return stack


def violations(problem: str, start: int, end: int) -> list[str]:
    """Rules broken by hiding problem[start:end], judged from the surrounding text."""
    before, after = problem[:start], problem[end:]
    found = []
    braces = unclosed(before, "{", "}")
    if before.rstrip().endswith("_") or any(before[:b].rstrip().endswith("_") for b in braces):
        found.append("subscript")
    lo = max([m.end() for m in CLAUSE_END.finditer(problem, 0, start)], default=0)
    hi = min([m.start() for m in CLAUSE_END.finditer(problem, end)], default=len(problem))
    if INEQUALITY.search(problem[lo:hi]):
        found.append("inequality")
    power = re.match(r"\s*\^\s*(\{[^{}]*\}|\\[A-Za-z]+|\w)", after)
    if power and re.search(r"[A-Za-z]", re.sub(r"\\(circ|prime)|\\text\{[^}]*\}|\\frac", "", power.group(1))):
        found.append("exponent_base")
    if any(FUNCTION_HEAD.search(before[:p]) for p in unclosed(before, "(", ")")):
        found.append("function_argument")
    if re.search(r"\\(?:sin|cos|tan|log|ln)(?:_\{?\w+\}?)?\s*$", before):
        found.append("function_argument")
    if any(re.search(r"\\(?:begin|end)\s*$", before[:b]) for b in braces):
        found.append("begin_name")
    if re.search(r"(?:cm|mm|km|ft|in|units?|\\text\{[^}]*\}|\\mbox\{[^}]*\})\s*\^\s*\{?\s*$", before):
        found.append("unit_exponent")
    if before.endswith("^") or re.search(r"\\[A-Za-z]+$", before):
        found.append("latex_break")
    if re.search(r"\\(?:d|t)?frac\s*(?:\{[^{}]*\})?\s*$", before) and not before.endswith("{"):
        found.append("latex_break")
    if before[-1:].isalpha() or after[:1].isalpha():
        found.append("glued_to_word")
    if before.rfind("[asy]") > before.rfind("[/asy]"):
        found.append("asy_code")
    return found


def test_every_dual_hides_one_allowed_number(produced) -> None:
    """Across all four sets: only the number changed, its value is right, and no rule is broken."""
    checked = 0
    for name, items in produced.items():
        for row, duals in items:
            problem = row["problem"]
            for dual in duals:
                start, end = hidden_span(problem, dual.masked_text, dual.variable)
                written = problem[start:end]
                assert re.fullmatch(r"-?(\d[\d,{}\\! ]*(\.\d+)?|\.\d+)", written), (name, written)
                assert Fraction(re.sub(r"\{,\}|,\\!|,| ", "", written)) == Fraction(dual.value)
                broken = violations(problem, start, end)
                assert not broken, (
                    f"{name} {row['id']}: hiding {written!r} breaks {broken}: ...{problem[max(0, start - 40) : end + 20]!r}"
                )
                checked += 1
    assert checked > 5000


def test_coverage_and_duals_per_problem(produced) -> None:
    """Printed for the report (pytest -s); loose floors so a regression in the finder shows."""
    floors = {"math500_test": 0.75, "gsm8k_test": 0.95, "aime2024": 0.85, "amc2023": 0.8}
    for name, items in produced.items():
        with_duals = [d for _, d in items if d]
        coverage = len(with_duals) / len(items)
        per_problem = sum(len(d) for d in with_duals) / len(with_duals)
        print(
            f"{name}: {len(items)} problems, coverage {coverage:.1%}, {per_problem:.2f} duals per covered problem"
        )
        assert coverage >= floors[name]
        assert 1.5 <= per_problem <= 12


def test_hidden_value_never_equals_the_recorded_answer(produced) -> None:
    compared = 0
    for items in produced.values():
        for row, duals in items:
            if re.fullmatch(r"-?\d+(\.\d+)?", row["answer"]):
                assert all(Fraction(d.value) != Fraction(row["answer"]) for d in duals)
                compared += 1
    assert compared > 1000


def test_names_are_fresh_and_deterministic(produced, shared_data, task) -> None:
    for items in produced.values():
        for row, duals in items:
            names = [d.variable for d in duals]
            assert len(set(names)) == len(names)
            for n in names:
                assert re.fullmatch(rf"V[{NAME_LETTERS}]{{2,}}", n) and n not in row["problem"]
    rows = load(shared_data, "amc2023")
    again = [task.decompose({"problem": r["problem"], "answer": r["answer"]}, seed=0).duals for r in rows]
    assert again == [d for _, d in produced["amc2023"]]
    other_seed = [
        task.decompose({"problem": r["problem"], "answer": r["answer"]}, seed=1).duals for r in rows
    ]
    assert other_seed != again
    assert [sorted(d.value for d in x) for x in other_seed] == [sorted(d.value for d in x) for x in again]


def test_fresh_names_avoid_every_word_of_the_text() -> None:
    text = " ".join(f"V{a}{b}" for a in NAME_LETTERS for b in NAME_LETTERS[:-1])  # 380 of 400 taken
    names = fresh_names(problem_rng(0, text), text, 30)
    assert len(set(names)) == 30 and all(n not in text for n in names)


def test_all_wordings_are_used(produced) -> None:
    used = {d.template for items in produced.values() for _, duals in items for d in duals}
    assert used == set(range(len(DUAL_QUESTIONS)))


def test_prompts(task, produced) -> None:
    row, duals = produced["gsm8k_test"][0]
    primal = task.primal_messages({"problem": row["problem"]})
    assert primal == [{"role": "user", "content": f"{row['problem']}\n{PRIMAL_SUFFIX}"}]
    dual = duals[0]
    text = task.dual_messages(dual, "\\frac{7}{2}")[0]["content"]
    assert text.startswith(dual.masked_text + "\n\n")
    question = text[len(dual.masked_text) :]
    assert "\\frac{7}{2}" in question and question.count(dual.variable) == 2
    assert "\\boxed{}" in question  # where the value goes


def test_score_reconstruction(task) -> None:
    decomposition = task.decompose(
        {"problem": "A farmer has 17 cows and buys 5 more. How many cows?", "answer": "22"}
    )
    seventeen = next(d for d in decomposition.duals if d.value == "17")
    assert task.score_reconstruction(seventeen, "22 - 5 = 17, so \\boxed{17}.") == 1.0
    assert task.score_reconstruction(seventeen, f"Therefore {seventeen.variable} = 17") == 1.0
    assert task.score_reconstruction(seventeen, "The answer is 17.0") == 1.0
    assert task.score_reconstruction(seventeen, "\\boxed{18}") == 0.0
    assert task.score_reconstruction(seventeen, "I don't know") == 0.0
    assert task.score_reconstruction(seventeen, "") == 0.0
    assert task.score_reconstruction(seventeen, "9" * 100_000 + " \\boxed{{{{") == 0.0


def test_leaks(task) -> None:
    dual = task.decompose({"problem": "Tom has 16 apples and eats 3 of them."}).duals
    sixteen = next(d for d in dual if d.value == "16")
    assert task.leaks(sixteen, "16")
    assert task.leaks(sixteen, "\\frac{16}{3}")
    assert task.leaks(sixteen, "-16")
    assert not task.leaks(sixteen, "160")
    assert not task.leaks(sixteen, "13")


def test_gold_score(task) -> None:
    assert task.gold_score("so the answer is \\boxed{18}", "18") == 1.0
    assert task.gold_score("so the answer is \\boxed{17}", "18") == 0.0


def test_rebuilt_from_params(task) -> None:
    again = get_task("math", **task.params)
    assert type(again) is type(task) and again.params == task.params == {"timeout": 2.0}
    with pytest.raises(TypeError, match="unknown math task parameter"):
        get_task("math", tolerance=0.1)


def test_the_rule_checker_sees_the_excluded_numbers(shared_data: Path) -> None:
    """The independent checker above is not vacuous: it flags nearly every number the finder excluded."""
    from dupo_verl.tasks.math_numbers import scan_numbers

    flagged = total = 0
    for name in DATASETS:
        for row in load(shared_data, name):
            for span in scan_numbers(row["problem"]):
                if span.excluded is not None:
                    total += 1
                    flagged += bool(violations(row["problem"], span.start, span.end))
    print(f"rule checker flags {flagged}/{total} excluded numbers")
    assert total > 2000 and flagged / total > 0.9
