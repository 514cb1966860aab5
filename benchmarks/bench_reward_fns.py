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

The soak (issue 16, also run as a test: tests/reward_fns/test_reward_load.py) judges a few thousand
mixed numeric/symbolic pairs (``soak_pairs``) single-threaded on a quiet machine, then through the
DuPO scorer and through ``compute_score`` from 16 threads each while busy loops saturate every CPU.
It prints ``soak_time_ratio_vs_quiet=<x>`` (loaded wall time over the quiet run's, same process)
and the number of verdicts that differ (must be 0).

    python benchmarks/bench_reward_fns.py [--problems 150] [--soak-pairs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from reward_fns.math import Verdict, answers_equal, extract_answer, judge_answers, parse_number, warm_up

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


# -- soak: verdicts under load (issue 16) -------------------------------------------------------

SOAK_THREADS = 16
_SYMBOLIC_KINDS = frozenset(
    {"polynomial", "root", "pi", "set", "interval", "tuple", "log", "linear", "decimal root",
     "fraction times digit", "trig"}
)
HOG_LIMIT_S = 600  # a busy loop ends by itself even if its parent dies before killing it


def _symbolic_pairs(rng: random.Random) -> list[tuple[str, str, bool, str]]:
    """(pred, gold, truth, kind): one family member each, right or wrong by construction."""
    a, b, c = rng.randint(1, 30), rng.choice([2, 3, 5, 6, 7, 10, 11]), rng.randint(2, 12)
    d1, d2, d3 = rng.randint(1, 9), rng.randint(2, 9), rng.randint(2, 9)  # one-digit TeX arguments
    families = [
        ("polynomial", f"(x+{a})^2", f"x^2+{2 * a}x+{a * a}", f"x^2+{2 * a}x+{a * a + 1}"),
        ("root", f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{a * a * b}}}", f"\\sqrt{{{(a + 1) ** 2 * b}}}"),
        ("pi", f"\\frac{{{a}}}{{{c}}}\\pi", f"\\frac{{{a}\\pi}}{{{c}}}", f"\\frac{{{a}\\pi}}{{{c + 1}}}"),
        ("set", f"\\{{{a + c}, {a}, {a + 1}\\}}", f"\\{{{a}, {a + 1}, {a + c}\\}}", f"\\{{{a}, {a + 2}, {a + c}\\}}"),
        ("interval", f"[{a},{a + c})", f"[{a}, {a + c})", f"({a}, {a + c}]"),
        ("tuple", f"\\left({a},{a + c}\\right)", f"({a}, {a + c})", f"({a + c}, {a})"),
        ("log", f"{c}", f"\\log_2 {2 ** c}", f"\\log_2 {2 ** (c + 1)}"),
        ("linear", f"{c}y+{a}x", f"{a}x+{c}y", f"{a}x+{c + a}y"),
        ("decimal root", f"{b ** 0.5:.8f}", f"\\sqrt{{{b}}}", f"\\sqrt{{{b + 1}}}"),
        ("fraction times digit", f"\\frac{d1}{d2}{d3}", f"\\frac{{{d1 * d3}}}{{{d2}}}", f"\\frac{{{d1}}}{{{d2 * 10 + d3}}}"),
        ("trig", "1", f"\\sin^2({a}x)+\\cos^2({a}x)", f"\\sin^2({a}x)+\\cos^2({a + 1}x) + 1"),
    ]
    kind, pred, right, wrong = families[rng.randrange(len(families))]
    return [(pred, right, True, kind), (pred, wrong, False, kind)]


def soak_pairs(n: int, seed: int = 0, symbolic_share: float = 0.15) -> list[Pair]:
    """``n`` mixed pairs: numeric reconstructions of random values (incl. ``.25``, ``1e3``, ``2 1/2``,
    ``3 million``, units) and symbolic answers, each right or wrong by construction; no pair twice."""
    rng = random.Random(seed)
    pairs: dict[tuple[str, str], Pair] = {}
    while len(pairs) < n:
        if rng.random() < symbolic_share:
            candidates = [Pair(p, g, t, k) for p, g, t, k in _symbolic_pairs(rng)]
        else:
            v = Fraction(rng.randint(-5000, 5000), rng.choice([1, 1, 1, 2, 4, 5, 8, 10, 100]))
            candidates = [Pair(p, plain(v), t, f) for p, t, f in reconstructions(v, rng.random() < 0.2, rng)]
            whole, num, den, digits = rng.randint(1, 20), rng.randint(1, 6), 7, rng.randint(1, 99)
            frac = whole + Fraction(num, den)
            candidates += [
                Pair(f".{digits:02d}", f"\\frac{{{digits}}}{{100}}", True, "leading dot"),
                Pair(f"-.{digits:02d}", f"0.{digits:02d}", False, "leading dot"),
                Pair(f"{whole} {num}/{den}", f"\\frac{{{frac.numerator}}}{{{frac.denominator}}}", True, "mixed"),
                Pair(f"{whole} {num}/{den}", f"{whole * num}/{den}", False, "mixed"),  # not a product
                Pair(f"{whole}e3", f"{whole * 1000}", True, "1e3"),
                Pair(f"{whole} million", f"{whole}", False, "scale word"),
                Pair(f"{whole} cm", f"{whole}\\text{{ m}}", False, "units"),
                Pair(f"{whole} cm", f"{whole}", True, "units"),
            ]
        for pair in rng.sample(candidates, k=min(3, len(candidates))):
            pairs.setdefault((pair.pred, pair.gold), pair)
    out = list(pairs.values())[:n]
    rng.shuffle(out)
    return out


@contextlib.contextmanager
def cpu_hogs(count: int | None = None) -> Iterator[list[subprocess.Popen]]:
    """Busy loops on every CPU (bounded by ``HOG_LIMIT_S``), killed on exit."""
    code = f"import time\nend = time.monotonic() + {HOG_LIMIT_S}\nwhile time.monotonic() < end: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count or os.cpu_count() or 2)]
    try:
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(timeout=30)


def quiet_verdicts(pairs: list[Pair]) -> list[Verdict]:
    """The reference: one thread, no other load from us."""
    return [judge_answers(p.pred, p.gold) for p in pairs]


def compute_score_verdicts(pairs: list[Pair], threads: int = SOAK_THREADS) -> list[tuple[Verdict, float]]:
    """(verdict, verify_timeouts) of ``reward_fns.compute_score`` on each pair, from ``threads`` threads."""
    from reward_fns import compute_score

    def one(p: Pair) -> tuple[Verdict, float]:
        out = compute_score("math", f"So the answer is \\boxed{{{p.pred}}}.", p.gold)
        if out["verify_timeouts"]:
            return Verdict.TIMEOUT, out["verify_timeouts"]
        return (Verdict.EQUAL if out["acc"] == 1.0 else Verdict.UNEQUAL), 0.0

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, pairs))


def scorer_verdicts(pairs: list[Pair], threads: int = SOAK_THREADS) -> list[tuple[Verdict, float]]:
    """(verdict, dupo_verify_timeouts) of the DuPO scorer (``score_response`` with the math task), one
    rollout per pair whose one dual question hides ``gold`` and whose dual replies ``\\boxed{pred}``
    (a recorded reply: the checker is under test, not the dual model), ``threads`` at a time."""
    from dupo_verl.scoring import Completion, DualOptions, score_response
    from dupo_verl.tasks import DualQuestion, get_task

    task, options = get_task("math"), DualOptions(dual_questions_per_rollout=1, dual_samples=1)

    async def run() -> list[tuple[Verdict, float]]:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(threads))
        gate = asyncio.Semaphore(threads)

        async def one(i: int, p: Pair) -> tuple[Verdict, float]:
            async def dual_reply(messages, *, n, temperature, top_p, max_tokens, session_id):
                return [Completion(text=f"The hidden number is \\boxed{{{p.pred}}}.", num_tokens=8)] * n

            dual = DualQuestion(masked_text="A problem with Vqz in it.", variable="Vqz", value=p.gold)
            async with gate:
                out = await score_response(task, [dual], "So \\boxed{A}.", dual_reply, options, f"soak-{i}")
            timeouts = out.metrics["dupo_verify_timeouts"]
            if timeouts:
                return Verdict.TIMEOUT, timeouts
            return (Verdict.EQUAL if out.metrics["dupo_dual_acc"] == 1.0 else Verdict.UNEQUAL), 0.0

        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs))))

    return asyncio.run(run())


@dataclass
class SoakResult:
    quiet: list[Verdict]
    scorer: list[tuple[Verdict, float]]
    compute_score: list[tuple[Verdict, float]]
    quiet_s: float
    loaded_s: float

    def differing(self) -> list[int]:
        return [
            i for i, (q, s, c) in enumerate(zip(self.quiet, self.scorer, self.compute_score, strict=True))
            if s[0] is not q or c[0] is not q
        ]


def soak(pairs: list[Pair], threads: int = SOAK_THREADS) -> SoakResult:
    """Quiet single-threaded verdicts, then the scorer's and compute_score's under saturated CPUs."""
    warm_up()
    judge_answers("\\sqrt{4}", "2")  # helper start-up is a one-time cost, outside both timings
    start = time.perf_counter()
    quiet = quiet_verdicts(pairs)
    quiet_s = time.perf_counter() - start
    with cpu_hogs():
        start = time.perf_counter()
        scorer = scorer_verdicts(pairs, threads)
        computed = compute_score_verdicts(pairs, threads)
        loaded_s = time.perf_counter() - start
    return SoakResult(quiet, scorer, computed, quiet_s, loaded_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--problems", type=int, default=150, help="problems taken from each of MATH-500 and GSM8K"
    )
    parser.add_argument("--per-problem", type=int, default=3, help="numbers masked per problem")
    parser.add_argument("--soak-pairs", type=int, default=2000, help="pairs judged by the soak (0: skip it)")
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
    if args.soak_pairs > 0:
        pairs = soak_pairs(args.soak_pairs)
        result = soak(pairs)
        symbolic = sum(p.kind in _SYMBOLIC_KINDS for p in pairs)
        wrong = sum(q is not Verdict.EQUAL if p.truth else q is not Verdict.UNEQUAL
                    for q, p in zip(result.quiet, pairs, strict=True))
        print(
            f"\n== soak: {len(pairs)} pairs ({symbolic} symbolic), quiet 1 thread {result.quiet_s:.1f} s; "
            f"scorer + compute_score x {SOAK_THREADS} threads each, {os.cpu_count()} busy loops: "
            f"{result.loaded_s:.1f} s for twice the pairs"
        )
        print(f"quiet verdicts against construction: {wrong} wrong; loaded verdicts differing: "
              f"{len(result.differing())}")
        print(f"soak_time_ratio_vs_quiet={result.loaded_s / result.quiet_s:.2f}")
    print(f"speedup_vs_math_verify={dual_speedup:.1f}")


if __name__ == "__main__":
    main()
