"""The paper's toy duality: x = (A, B), primal y = A + B, the dual gets (y, A) and must answer B.

Prompts are short and fixed, for a tiny model trained on them (chat messages, one user turn):

    primal  user: "12+35="       expected reply: "47"
    dual    user: "12+V=47 V="   expected reply: "35"

The dual's `masked_text` is "12+V=" with variable "V" and value "35"; the dual prompt appends the
primal answer and " V=". Param `hide` chooses the hidden part: "b" (the paper's, default), "a" (A
is asked in the commuted form "35+V=47 V=", the same format, expected reply "12") or "both": two
dual questions, an ensemble whose errors differ (with `dupo.dual_aggregate=min` both must agree).
Operands are non-negative integers written in decimal without signs or spaces. A reply's answer is
its first integer (params `strict=True`: the whole reply must be one integer). `gold_score` is
exact integer match with A + B.

`generate_problems` draws distinct (A, B) pairs, so a train/val split made from them never shares
a pair.
"""

from __future__ import annotations

import operator
import random
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from dupo_verl.tasks.base import Decomposition, DualQuestion, DualTask, Messages
from dupo_verl.tasks.inputs import InputField
from dupo_verl.tasks.registry import register_task

VARIABLE = "V"
HIDE_CHOICES = ("b", "a", "both")
_FIRST_INT = re.compile(r"-?\d+")
_ONLY_INT = re.compile(r"\s*(-?\d+)\s*")


def primal_prompt(a: int, b: int) -> str:
    return f"{a}+{b}="


def dual_prompt(masked_text: str, answer: str) -> str:
    return f"{masked_text}{answer} {VARIABLE}="


def generate_problems(
    num_problems: int, operand_min: int = 0, operand_max: int = 99, seed: int = 0
) -> list[dict]:
    """`num_problems` distinct pairs A, B in [operand_min, operand_max], as records {"a", "b", "id"}."""
    if operand_min < 0 or operand_max < operand_min:
        raise ValueError(f"need 0 <= operand_min <= operand_max, got {operand_min}..{operand_max}")
    width = operand_max - operand_min + 1
    if not 0 < num_problems <= width * width:
        raise ValueError(f"num_problems must be in 1..{width * width} (distinct pairs), got {num_problems}")
    rng = random.Random(f"two_sum:{seed}")
    codes = rng.sample(range(width * width), num_problems)
    records = []
    for code in codes:
        a, b = operand_min + code // width, operand_min + code % width
        records.append({"a": a, "b": b, "id": f"{a}+{b}"})
    return records


@register_task("two_sum")
class TwoSumTask(DualTask):
    """Params: `strict` (bool): the reply must be exactly one integer, else its first integer counts;
    `hide` ("b", "a" or "both"): which operand(s) the dual questions hide."""

    ability: str = "arithmetic"
    input_fields: ClassVar[dict[str, InputField]] = {
        "a": InputField("a", kind="int"),
        "b": InputField("b", kind="int"),
    }

    def __init__(self, strict: bool = False, hide: str = "b") -> None:
        if hide not in HIDE_CHOICES:
            raise ValueError(f"two_sum param hide must be one of {', '.join(HIDE_CHOICES)}, got {hide!r}")
        super().__init__(strict=bool(strict), hide=hide)
        self.strict = bool(strict)
        self.hide = hide

    def _integer(self, text: str) -> int | None:
        text = text if isinstance(text, str) else ""  # model output is untrusted: never raise on it
        m = _ONLY_INT.fullmatch(text) if self.strict else _FIRST_INT.search(text[:1000])
        return int(m.group(1) if self.strict else m.group(0)) if m else None

    def decompose(self, example: Mapping[str, Any], seed: int = 0) -> Decomposition:
        a, b = _operand(example, "a"), _operand(example, "b")
        hide_b = DualQuestion(masked_text=f"{a}+{VARIABLE}=", variable=VARIABLE, value=str(b))
        hide_a = DualQuestion(masked_text=f"{b}+{VARIABLE}=", variable=VARIABLE, value=str(a))
        return Decomposition(duals={"b": [hide_b], "a": [hide_a], "both": [hide_b, hide_a]}[self.hide])

    def ground_truth(self, example: Mapping[str, Any]) -> str:
        return str(_operand(example, "a") + _operand(example, "b"))

    def data_source(self, stem: str) -> str:
        return "dupo/two_sum"

    def primal_messages(self, example: Mapping[str, Any]) -> Messages:
        return [{"role": "user", "content": primal_prompt(_operand(example, "a"), _operand(example, "b"))}]

    def extract_primal_answer(self, response: str) -> str | None:
        value = self._integer(response)
        return None if value is None else str(value)

    def dual_messages(self, dual: DualQuestion, primal_answer: str) -> Messages:
        return [{"role": "user", "content": dual_prompt(dual.masked_text, primal_answer)}]

    def score_reconstruction(self, dual: DualQuestion, dual_response: str) -> float:
        value = self._integer(dual_response)
        return 1.0 if value is not None and str(value) == dual.value else 0.0

    def leaks(self, dual: DualQuestion, primal_answer: str) -> bool:
        """Answering the hidden operand would let a copying dual "recover" it; only a shown 0 makes it right."""
        shown = dual.masked_text.split("+", 1)[0]
        return isinstance(primal_answer, str) and primal_answer.strip() == dual.value and shown != "0"

    def answers_equal(self, a: str, b: str) -> bool:
        x, y = self._integer(a), self._integer(b)
        return x is not None and x == y

    def gold_score(self, response: str, ground_truth: str) -> float | None:
        value = self._integer(response)
        return 1.0 if value is not None and str(value) == str(ground_truth).strip() else 0.0


def _operand(example: Mapping[str, Any], key: str) -> int:
    value = example[key]
    try:
        if isinstance(value, bool):
            raise TypeError
        number = int(value.strip()) if isinstance(value, str) else operator.index(value)
    except (TypeError, ValueError):
        raise ValueError(f"two_sum operand {key!r} must be an integer, got {value!r}") from None
    if number < 0:
        raise ValueError(f"two_sum operand {key!r} must be >= 0, got {number}")
    return number
