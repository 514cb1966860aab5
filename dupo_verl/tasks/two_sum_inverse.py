"""Two-sum with the roles swapped: the dual of two-sum as a primal, judged by two-sum itself.

The primal is two-sum's dual prompt; its dual is two-sum's primal prompt, built from the candidate:

    primal  user: "12+V=47 V="   expected reply: "35"   (B = S - A)
    dual    user: "12+35="       expected reply: "47"   (the hidden part is S)

Both roles of the toy duality can then be trained label-free, each judged by the other (the demo's
`dupo_alternate`). Input fields are `a` and `s` (the sum, which the prompt shows), not `b`: the
example holds exactly what the model is given. The dual question's `masked_text` is A written in
decimal, its variable is empty (the dual prompt names no variable) and its value is S. Answers are
read as in `two_sum` (first integer, or the whole reply with `strict=True`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from dupo_verl.tasks.base import Decomposition, DualQuestion, Messages
from dupo_verl.tasks.inputs import InputField
from dupo_verl.tasks.registry import register_task
from dupo_verl.tasks.two_sum import VARIABLE, TwoSumTask, _operand, dual_prompt, primal_prompt


@register_task("two_sum_inverse")
class TwoSumInverseTask(TwoSumTask):
    """Params: `strict` (bool), as for `two_sum`."""

    input_fields: ClassVar[dict[str, InputField]] = {
        "a": InputField("a", kind="int"),
        "s": InputField("s", kind="int"),
    }

    def __init__(self, strict: bool = False) -> None:
        super().__init__(strict=strict)
        self.params = {"strict": self.strict}  # no `hide`: the inverse always hides S

    def decompose(self, example: Mapping[str, Any], seed: int = 0) -> Decomposition:
        a, s = _known(example)
        return Decomposition(duals=[DualQuestion(masked_text=str(a), variable="", value=str(s))])

    def ground_truth(self, example: Mapping[str, Any]) -> str:
        a, s = _known(example)
        return str(s - a)

    def data_source(self, stem: str) -> str:
        return "dupo/two_sum_inverse"

    def primal_messages(self, example: Mapping[str, Any]) -> Messages:
        a, s = _known(example)
        return [{"role": "user", "content": dual_prompt(f"{a}+{VARIABLE}=", str(s))}]

    def dual_messages(self, dual: DualQuestion, primal_answer: str) -> Messages:
        """`primal_answer` comes from `extract_primal_answer`: one integer (other text raises ValueError)."""
        return [{"role": "user", "content": primal_prompt(int(dual.masked_text), int(primal_answer))}]

    def leaks(self, dual: DualQuestion, primal_answer: str) -> bool:
        """Answering S itself would let a copying dual "recover" S; only A = 0 makes S correct."""
        return isinstance(primal_answer, str) and primal_answer.strip() == dual.value and dual.masked_text != "0"


def _known(example: Mapping[str, Any]) -> tuple[int, int]:
    a, s = _operand(example, "a"), _operand(example, "s")
    if s < a:
        raise ValueError(f"two_sum_inverse needs s >= a (B = s - a >= 0), got a={a} s={s}")
    return a, s
