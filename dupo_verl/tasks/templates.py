"""Prompt wordings for the math task (the paper's dual question variants and the primal suffix).

Each dual question stores the index of its wording (`DualQuestion.template`), drawn with the
seed, so a data set mixes phrasings while any one row always renders the same prompt.
"""

from __future__ import annotations

import re

PRIMAL_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."

# The paper's base template and variants ("Given that the correct answer is ...", "Check your
# work: ...", "When the solution for above question is ..."), plus two close rewordings.
DUAL_QUESTIONS: tuple[str, ...] = (
    "Given that the correct answer is {answer}, determine the value of {variable}.",
    "Check your work: If the solution for above question is \\boxed{{answer}}, what must {variable} have been?",
    "When the solution for above question is \\boxed{{answer}}, what's the corresponding {variable}?",
    "Suppose the answer to the question above is {answer}. What is the value of the unknown {variable}?",
    "The question above has the answer {answer}. Work backwards: what number does {variable} stand for?",
)
DUAL_SUFFIX = "Please reason step by step, and put the value of {variable} within \\boxed{}."

_SLOT = re.compile(r"\{(answer|variable)\}")


def fill(template: str, **values: str) -> str:
    """Fill `{answer}` / `{variable}` in one pass, so braces inside the answer are left alone."""
    return _SLOT.sub(lambda m: values[m.group(1)], template)


def dual_question(index: int, answer: str, variable: str) -> str:
    """The question line for wording `index` (taken modulo the number of wordings)."""
    template = DUAL_QUESTIONS[index % len(DUAL_QUESTIONS)]
    return fill(template, answer=answer, variable=variable) + " " + fill(DUAL_SUFFIX, variable=variable)
