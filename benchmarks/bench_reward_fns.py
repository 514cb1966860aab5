"""Speed and verdicts of reward_fns.math.answers_equal against math-verify's parse+verify, in one process.

Two sets, both built from the real data in ``../shared/data/math``:

* dual reconstructions: numbers of MATH-500 and GSM8K problems (and their numeric answers) as DuPO
  masks them, each "reconstructed" the ways models write numbers (``5``, ``5.0``, ``$5``, ``1,200``,
  ``3/4``, ``\\frac{3}{4}``, ``50%``, ``-2``, ``x = 5``, ``\\boxed{5}``), right and wrong;
* MATH-500 gold answers: each gold solution's boxed answer against the recorded answer (right), and
  the answer plus one / another row's answer (wrong).

The baseline is ``math_verify.verify(parse(gold), parse(pred))`` with each answer in ``$...$``,
called directly on the main thread with math-verify's default (signal) timeouts. Every pair carries
the verdict it was built to have, so a disagreement says which side is wrong. The last line is
``speedup_vs_math_verify=<x>`` for the dual-reconstruction set.

    python benchmarks/bench_reward_fns.py [--problems 150]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from reward_fns.math import answers_equal, extract_answer, parse_number, warm_up

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "math"
# Numbers in running text; not subscripts (x_1), exponents (2^3), bases (2^n) or parts of names.
_NUMBER = re.compile(r"(?<![\w.^_{\\])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w^]|\.\d|,\d{3})(\s*\\?%)?")

_PLAIN_ANSWER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Pair:
    pred: str
    gold: str
    truth: bool
    kind: str


def load(name: str) -> list[dict]:
    with (DATA / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def latex_fraction(v: Fraction) -> str:
    sign = "-" if v < 0 else ""
    return f"{sign}\\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"


def plain(v: Fraction) -> str:
    """Shortest exact decimal when there is one, else a/b."""
    if v.denominator == 1:
        return str(v.numerator)
    d = v.denominator
    for k in range(1, 12):
        if (10**k) % d == 0:
            digits = abs(v.numerator) * (10**k // d)
            whole, frac = divmod(digits, 10**k)
            return f"{'-' if v < 0 else ''}{whole}.{frac:0{k}d}".rstrip("0")
    return f"{v.numerator}/{v.denominator}"


def reconstructions(v: Fraction, percent: bool, rng: random.Random) -> list[tuple[str, bool, str]]:
    """(reconstruction, is right, form) for a hidden value ``v``, written as models write numbers."""
    s = plain(v)
    var = "V" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(2))
    right = [(s, "plain"), (f"{var} = {s}", "x = n"), (f"\\boxed{{{s}}}", "boxed")]
    if v.denominator == 1:
        n = v.numerator
        right += [(f"{n}.0", "n.0"), (f"${n}" if n >= 0 else f"-${-n}", "$n")]
        if abs(n) >= 1000:
            right.append((f"{n:,}", "1,200"))
        right.append((f"\\frac{{{2 * n}}}{{2}}", "\\frac{2n}{2}"))
    else:
        right += [(f"{v.numerator}/{v.denominator}", "a/b"), (latex_fraction(v), "\\frac{a}{b}")]
    if percent:
        right.append((f"{s}%", "n%"))
    wrong_values = [v + 1, v * 10 if v else Fraction(7), v / 2 if v else Fraction(1, 2)]
    if v:
        wrong_values.append(-v)
    wrong = []
    for w in wrong_values:
        ws = plain(w)
        wrong += [(ws, "plain"), (f"\\boxed{{{ws}}}", "boxed"), (f"{var} = {ws}", "x = n")]
        if w.denominator != 1:
            wrong.append((latex_fraction(w), "\\frac{a}{b}"))
        elif abs(w) >= 1000:
            wrong.append((f"{w.numerator:,}", "1,200"))
        if percent:
            wrong.append((f"{ws}%", "n%"))
    return [(p, True, f) for p, f in right] + [(p, False, f) for p, f in wrong]


def dual_pairs(rows: list[dict], per_problem: int, rng: random.Random) -> list[Pair]:
    pairs = []
    for row in rows:
        hidden = []
        for m in _NUMBER.finditer(row["problem"]):
            text = m.group(1) + (m.group(2) or "")
            hidden.append((text, parse_number(text), bool(m.group(3))))
        hidden = hidden[:per_problem]
        answer = row["answer"].strip()
        if _PLAIN_ANSWER.fullmatch(answer):  # "x=5" or "\\frac{1}{2}" answers are not masked numbers
            hidden.append((answer, parse_number(answer), False))
        for gold, value, percent in hidden:
            for pred, truth, form in reconstructions(value, percent, rng):
                pairs.append(Pair(pred, gold, truth, form))
    return pairs


def math500_gold_pairs(rows: list[dict]) -> list[Pair]:
    pairs = []
    for i, row in enumerate(rows):
        gold = row["answer"].strip()
        pairs.append(Pair(extract_answer(row["solution"]) or "", gold, True, "gold solution"))
        value = parse_number(gold)
        if value is not None:
            pairs.append(Pair(plain(value + 1), gold, False, "gold+1"))
        for step in range(1, len(rows)):
            other = rows[(i + step) % len(rows)]["answer"].strip()
            if other != gold and not (value is not None and parse_number(other) == value):
                pairs.append(Pair(other, gold, False, "other row"))
                break
    return pairs


def math_verify_equal(pred: str, gold: str) -> bool:
    from math_verify import parse, verify

    return bool(verify(parse(f"${gold}$"), parse(f"${pred}$")))


def timed(fn, pairs: list[Pair]) -> tuple[list[bool], float]:
    start = time.perf_counter()
    verdicts = [fn(p.pred, p.gold) for p in pairs]
    return verdicts, time.perf_counter() - start


def compare(title: str, pairs: list[Pair]) -> float:
    ours, t_ours = timed(answers_equal, pairs)
    theirs, t_theirs = timed(math_verify_equal, pairs)
    n = len(pairs)
    agree = sum(a == b for a, b in zip(ours, theirs, strict=True))
    ours_right = sum(a == p.truth for a, p in zip(ours, pairs, strict=True))
    theirs_right = sum(b == p.truth for b, p in zip(theirs, pairs, strict=True))
    speedup = t_theirs / t_ours
    print(
        f"\n== {title}: {n} pairs ({sum(p.truth for p in pairs)} right, {sum(not p.truth for p in pairs)} wrong)"
    )
    print(
        f"answers_equal      {n / t_ours:12.0f} items/s  ({t_ours:.3f} s)  verdict = construction on {ours_right}/{n}"
    )
    print(
        f"math-verify direct {n / t_theirs:12.0f} items/s  ({t_theirs:.3f} s)  verdict = construction on {theirs_right}/{n}"
    )
    print(f"speedup {speedup:.1f}x   verdict agreement {agree}/{n} ({100 * agree / n:.2f}%)")
    ours_wrong = 0
    for p, a, b in zip(pairs, ours, theirs, strict=True):
        if a != b:
            wrong_side = "answers_equal" if a != p.truth else "math-verify"
            ours_wrong += wrong_side == "answers_equal"
            print(
                f"  disagree [{p.kind}] pred={p.pred!r} gold={p.gold!r} built={p.truth} "
                f"ours={a} math-verify={b} -> {wrong_side} is wrong"
            )
    print(f"disagreements that are our error: {ours_wrong}")
    return speedup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--problems", type=int, default=150, help="problems taken from each of MATH-500 and GSM8K"
    )
    parser.add_argument("--per-problem", type=int, default=3, help="numbers masked per problem")
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    rng = random.Random(0)
    math500, gsm8k = load("math500_test.jsonl"), load("gsm8k_test.jsonl")
    dual = dual_pairs(math500[: args.problems], args.per_problem, rng)
    dual += dual_pairs(gsm8k[: args.problems], args.per_problem, rng)
    gold = math500_gold_pairs(math500)

    warm_up()  # helper startup is a one-time cost, like math-verify's own import below
    answers_equal("\\sqrt{4}", "2")
    math_verify_equal("\\sqrt{4}", "2")
    print(
        f"python {sys.version.split()[0]}; baseline: math_verify.verify(parse('$gold$'), parse('$pred$')) "
        "on the main thread with its default signal timeouts"
    )
    gold_speedup = compare("MATH-500 gold answers", gold)
    dual_speedup = compare("DuPO dual reconstructions (MATH-500 + GSM8K numbers)", dual)
    print(f"\nMATH-500 gold answers speedup: {gold_speedup:.1f}x")
    print(f"speedup_vs_math_verify={dual_speedup:.1f}")


if __name__ == "__main__":
    main()
