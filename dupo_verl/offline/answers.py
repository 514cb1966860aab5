"""Candidate answers: extraction and grouping into distinct answers with their votes.

Candidates whose final answers are equal share one group, so the dual work for that answer is done
once (filter and rerank both rely on it). Equality is the task's own notion when it defines
`answers_equal(a, b)` (math: mathematical equality), else equality of whitespace-normalised text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dupo_verl.tasks import DualTask

Matcher = Callable[[str, str], bool]


@dataclass
class AnswerGroup:
    """One distinct final answer and the candidates (by position) that gave it."""

    answer: str
    members: list[int] = field(default_factory=list)

    @property
    def votes(self) -> int:
        return len(self.members)

    @property
    def first(self) -> int:
        return self.members[0]


def normalized(answer: str) -> str:
    return " ".join(answer.split())


def answer_matcher(task: DualTask) -> Matcher:
    """The task's `answers_equal` when it has one, else normalised text equality."""
    same = getattr(task, "answers_equal", None)
    if callable(same):
        return lambda a, b: bool(same(a, b))
    return lambda a, b: normalized(a) == normalized(b)


def extract_answers(task: DualTask, responses: Sequence[str], max_chars: int) -> list[str | None]:
    """Each response's final answer; None when absent, empty or longer than `max_chars`."""
    answers: list[str | None] = []
    for response in responses:
        try:
            answer = task.extract_primal_answer(response)
        except Exception:  # untrusted model output must not stop the row
            answer = None
        if answer is not None:
            answer = answer.strip()
        answers.append(answer if answer and len(answer) <= max_chars else None)
    return answers


def group_answers(answers: Sequence[str | None], same: Matcher) -> list[AnswerGroup]:
    """Distinct answers in order of first appearance; None (no answer) joins no group.

    >>> [(g.answer, g.members) for g in group_answers(["5", None, "7", " 5"], lambda a, b: a.strip() == b.strip())]
    [('5', [0, 3]), ('7', [2])]
    """
    groups: list[AnswerGroup] = []
    exact: dict[str, AnswerGroup] = {}
    for position, answer in enumerate(answers):
        if answer is None:
            continue
        group = exact.get(answer)
        if group is None:
            group = next((g for g in groups if same(answer, g.answer)), None)
        if group is None:
            group = AnswerGroup(answer=answer)
            groups.append(group)
        exact.setdefault(answer, group)
        group.members.append(position)
    return groups
