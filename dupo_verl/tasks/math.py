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

import itertools
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any, ClassVar, overload

from dupo_verl.tasks.base import Decomposition, DualQuestion, DualReply, DualTask, Messages
from dupo_verl.tasks.inputs import InputField
from dupo_verl.tasks.math_numbers import NumberSpan, scan_numbers
from dupo_verl.tasks.registry import register_task
from dupo_verl.tasks.templates import DUAL_QUESTIONS, PRIMAL_SUFFIX, dual_question
from reward_fns.math import answers_equal, check_time_bound, extract_answer, math_accuracy, parse_number

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


def name_stream(rng: random.Random, text: str, prefix: str = "V") -> Iterator[str]:
    """Distinct names `V` + lowercase consonants, none occurring anywhere in `text`, drawn on demand."""
    used: set[str] = set()
    attempts = 0
    while True:
        if attempts < 200:  # two letters (400 names) nearly always suffice
            name = prefix + _SHORT_NAMES[rng.randrange(len(_SHORT_NAMES))]
        else:
            length = 3 + (attempts - 200) // 200
            name = prefix + "".join(rng.choice(NAME_LETTERS) for _ in range(length))
        attempts += 1
        if name not in used and name not in text:
            used.add(name)
            yield name


def fresh_names(rng: random.Random, text: str, count: int, prefix: str = "V") -> list[str]:
    """`count` distinct names `V` + lowercase consonants, none occurring anywhere in `text`."""
    return list(itertools.islice(name_stream(rng, text, prefix), count))


class MaskedDuals(Sequence[DualQuestion]):
    """A problem's dual questions in their final (seeded random) order, each built when first read.

    Consumers keep only a capped prefix (`max_duals_per_problem`), and each question holds a copy of
    the whole problem, so building every one first would take problem length x numbers of memory
    (quadratic). The order is drawn up front; a question's name and wording are drawn from the
    problem's generator as it is built, in order, so the first k questions are the same whatever k.
    """

    def __init__(self, problem: str, spans: list[NumberSpan], rng: random.Random) -> None:
        self._problem = problem
        self._spans = spans
        self._rng = rng
        self._names = name_stream(rng, problem)
        self._built: list[DualQuestion] = []

    def __len__(self) -> int:
        return len(self._spans)

    @overload
    def __getitem__(self, index: int) -> DualQuestion: ...
    @overload
    def __getitem__(self, index: slice) -> list[DualQuestion]: ...
    def __getitem__(self, index: int | slice) -> DualQuestion | list[DualQuestion]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("dual question index out of range")
        while len(self._built) <= index:
            span = self._spans[len(self._built)]
            name = next(self._names)
            template = self._rng.randrange(len(DUAL_QUESTIONS))
            masked = self._problem[: span.start] + name + self._problem[span.end :]
            self._built.append(
                DualQuestion(masked_text=masked, variable=name, value=span.value, template=template)
            )
        return self._built[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MaskedDuals({len(self)} questions, {len(self._built)} built)"


@register_task("math")
class MathTask(DualTask):
    """Math problems; params: `timeout` (seconds allowed for one symbolic answer comparison)."""

    ability: str = "math"
    dual_templates: int | None = len(DUAL_QUESTIONS)
    input_fields: ClassVar[dict[str, InputField]] = {
        "problem": InputField("problem"),
        "answer": InputField(None, required=False),
    }

    def __init__(self, timeout: float = 2.0, **params: Any) -> None:
        if params:
            raise TypeError(f"unknown math task parameter(s) {sorted(params)}; known: ['timeout']")
        seconds = check_time_bound(timeout, "math task parameter timeout")  # rejects inf, nan, 1e12, "2"
        super().__init__(timeout=seconds)
        self.timeout = seconds

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
        rng.shuffle(candidates)
        result.duals = MaskedDuals(problem, candidates, rng)  # built lazily: see MaskedDuals
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

    def dual_reply(self, dual: DualQuestion) -> DualReply:
        """The dual prompt asks for the value within `\\boxed{}`; the number as the problem wrote it."""
        return DualReply(prefix="\\boxed{", value=dual.value, suffix="}")

    # -- scoring -------------------------------------------------------------------------------
    def score_reconstruction(self, dual: DualQuestion, dual_response: str) -> float:
        """1.0 when the dual's final answer equals the hidden number, else 0.0.

        A symbolic check without a verdict in time scores 0.0 here (a model must not earn reward
        with answers too costly to check) and is recorded in the caller's open
        `reward_fns.math.verify_tally()`: the scorer counts it as `dupo_verify_timeouts`.
        """
        predicted = extract_answer(dual_response)
        if predicted is None:
            return 0.0
        return 1.0 if answers_equal(predicted, dual.value, timeout=self.timeout) else 0.0

    def leaks(self, dual: DualQuestion, primal_answer: str) -> bool:
        """The answer shows the hidden number as one of its number tokens (sign ignored)."""
        hidden = parse_number(dual.value)
        if hidden is None or not isinstance(primal_answer, str):
            return False
        hidden = abs(hidden)
        return any(
            Fraction(_SEPARATOR.sub("", t)) == hidden for t in _ANSWER_NUMBER.findall(primal_answer)
        )

    def answers_equal(self, a: str, b: str) -> bool:
        """Mathematical equality, so `1/2` and `\\frac{1}{2}` are one candidate answer."""
        return answers_equal(a, b, timeout=self.timeout)

    def gold_score(self, response: str, ground_truth: str) -> float | None:
        return math_accuracy(response, ground_truth, timeout=self.timeout)  # a timeout: as in score_reconstruction
