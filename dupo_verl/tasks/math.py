"""The paper's math dual: hide one number of the problem, give the dual the candidate's final
answer, and ask it for the hidden number.

One dual question per maskable number (see `math_numbers`), the number replaced by a fresh name
(`V` plus lowercase consonants, absent from the problem), the wording drawn from the paper's variants.
Names, wordings and the order of the dual questions are drawn from a generator seeded with the
seed and the problem text, so the same problem and seed always give the same questions, whatever
the row order. Questions are stored in that shuffled order: a consumer that takes the first k gets
a random subset, not the first numbers of the problem.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, ClassVar

from dupo_verl.tasks.base import Decomposition, DualQuestion, DualTask, Messages
from dupo_verl.tasks.inputs import InputField
from dupo_verl.tasks.math_numbers import scan_numbers
from dupo_verl.tasks.registry import register_task
from dupo_verl.tasks.templates import DUAL_QUESTIONS, PRIMAL_SUFFIX, dual_question
from reward_fns.math import answers_equal, extract_answer, math_accuracy, parse_number

_ANSWER_NUMBER = re.compile(r"\d+(?:(?:\{,\}|,\\!|,)\d{3}(?!\d))*(?:\.\d+)?|(?<!\d)\.\d+")
_SEPARATOR = re.compile(r"\{,\}|,\\!|,")


_INTEGER = re.compile(r"-?\d+")


def _number(text: str) -> int | Fraction | None:
    """Exact value of a number; integers (the common case) without the general parser."""
    text = text.strip()
    return int(text) if _INTEGER.fullmatch(text) else parse_number(text)


def problem_rng(seed: int, text: str) -> random.Random:
    """A generator fixed by the seed and the text (string seeds are hashed with SHA-512)."""
    return random.Random(f"dupo:{seed}:{text}")


# Consonants only, like the paper's `Vsk` and `Vrj`: the name never reads as a word ("Von").
NAME_LETTERS = "bcdfghjklmnpqrstvwxz"
_SHORT_NAMES = [a + b for a in NAME_LETTERS for b in NAME_LETTERS]


def fresh_names(rng: random.Random, text: str, count: int, prefix: str = "V") -> list[str]:
    """`count` distinct names `V` + lowercase consonants, none occurring anywhere in `text`."""
    names: list[str] = []
    attempts = 0
    while len(names) < count:
        if attempts < 200:  # two letters (400 names) nearly always suffice
            name = prefix + _SHORT_NAMES[rng.randrange(len(_SHORT_NAMES))]
        else:
            length = 3 + (attempts - 200) // 200
            name = prefix + "".join(rng.choice(NAME_LETTERS) for _ in range(length))
        if name not in text and name not in names:
            names.append(name)
        attempts += 1
    return names


@register_task("math")
class MathTask(DualTask):
    """Math problems; params: `timeout` (seconds allowed for one symbolic answer comparison)."""

    ability: str = "math"
    input_fields: ClassVar[dict[str, InputField]] = {
        "problem": InputField("problem"),
        "answer": InputField(None, required=False),
    }

    def __init__(self, timeout: float = 2.0, **params: Any) -> None:
        if params:
            raise TypeError(f"unknown math task parameter(s) {sorted(params)}; known: ['timeout']")
        if not float(timeout) > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        super().__init__(timeout=float(timeout))
        self.timeout = float(timeout)

    # -- decomposition -------------------------------------------------------------------------
    def decompose(self, example: Mapping[str, Any], seed: int = 0) -> Decomposition:
        problem = str(example["problem"])
        answer = example.get("answer")
        gold = _number(str(answer)) if answer not in (None, "") else None
        result = Decomposition()
        candidates = []
        for span in scan_numbers(problem):
            if span.excluded is not None:
                result.skipped[span.excluded] += 1
            elif gold is not None and _number(span.value) == gold:
                result.skipped["answer_equal"] += 1  # the dual would just copy the answer back
            else:
                candidates.append(span)
        if not candidates:
            return result
        rng = problem_rng(seed, problem)
        names = fresh_names(rng, problem, len(candidates))
        templates = [rng.randrange(len(DUAL_QUESTIONS)) for _ in candidates]
        duals = [
            DualQuestion(
                masked_text=problem[: span.start] + name + problem[span.end :],
                variable=name,
                value=span.value,
                template=template,
            )
            for span, name, template in zip(candidates, names, templates, strict=True)
        ]
        rng.shuffle(duals)
        result.duals.extend(duals)
        return result

    def ground_truth(self, example: Mapping[str, Any]) -> str:
        answer = example.get("answer")
        return "" if answer is None else str(answer)

    # -- prompts -------------------------------------------------------------------------------
    def primal_messages(self, example: Mapping[str, Any]) -> Messages:
        return [{"role": "user", "content": f"{example['problem']}\n{PRIMAL_SUFFIX}"}]

    def extract_primal_answer(self, response: str) -> str | None:
        return extract_answer(response)

    def dual_messages(self, dual: DualQuestion, primal_answer: str) -> Messages:
        question = dual_question(dual.template, primal_answer, dual.variable)
        return [{"role": "user", "content": f"{dual.masked_text}\n\n{question}"}]

    # -- scoring -------------------------------------------------------------------------------
    def score_reconstruction(self, dual: DualQuestion, dual_response: str) -> float:
        predicted = extract_answer(dual_response)
        if predicted is None:
            return 0.0
        return 1.0 if answers_equal(predicted, dual.value, timeout=self.timeout) else 0.0

    def leaks(self, dual: DualQuestion, primal_answer: str) -> bool:
        """The answer shows the hidden number as one of its number tokens (sign ignored)."""
        hidden = parse_number(dual.value)
        if hidden is None:
            return False
        hidden = abs(hidden)
        return any(
            Fraction(_SEPARATOR.sub("", t)) == hidden for t in _ANSWER_NUMBER.findall(primal_answer or "")
        )

    def answers_equal(self, a: str, b: str) -> bool:
        """Mathematical equality, so `1/2` and `\\frac{1}{2}` are one candidate answer."""
        return answers_equal(a, b, timeout=self.timeout)

    def gold_score(self, response: str, ground_truth: str) -> float | None:
        return math_accuracy(response, ground_truth)
