"""The dual-task interface every DuPO task implements (framework-free: no verl import).

A task splits an example x into a known part and a hidden part x_u (one `DualQuestion` per way of
hiding), renders the primal prompt, turns a primal answer into dual prompts, and scores the dual's
reconstruction of x_u. Training (agent loop, reward manager), the offline filter and the reranker
all go through this one interface.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

Messages = list[dict[str, str]]

# Reasons `DualTask.reject_answer` may give; each is counted in the scorer's metric `dupo_<reason>`.
REJECTION_REASONS: tuple[str, ...] = ("wrong_language", "near_copy", "partial_copy")


def _shown(value: Any) -> str:
    """A value's type and a short repr, for error messages."""
    return f"{type(value).__name__} {value!r:.60}"


class LikelihoodUnsupported(ValueError):
    """A task whose dual cannot be scored by the likelihood of its hidden value (`dual_mode=likelihood`)."""


@dataclass(frozen=True)
class DualQuestion:
    """One way of hiding part of an example.

    `masked_text` is the known part with `variable` standing where the hidden `value` was
    (translation: empty variable, the source sentence as `value`). `template` picks the dual
    prompt wording. Stored as a plain dict in `extra_info["dupo"]["duals"]`.
    """

    masked_text: str
    variable: str
    value: str
    template: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any], templates: int | None = None) -> DualQuestion:
        """A stored dual question with every field checked (ValueError naming the field): rows are
        untrusted data, and a coerced field (`None` -> "None") would pay a dual for answering "None".
        `templates`: the task's number of dual wordings (`DualTask.dual_templates`), bounding `template`."""
        if not isinstance(row, Mapping):
            raise ValueError(f"dual question must be a mapping, got {cls._shown(row)}")
        missing = [k for k in ("masked_text", "variable", "value") if k not in row]
        if missing:
            raise ValueError(f"dual question is missing field(s) {missing}: {dict(row)!r:.200}")
        for name in ("masked_text", "variable"):
            if not isinstance(row[name], str):
                raise ValueError(f"dual question field {name!r} must be text, got {cls._shown(row[name])}")
        template = cls._template_index(row.get("template"))
        if templates is not None and template >= templates:
            raise ValueError(
                f"dual question field 'template' must be below {templates} (the task has {templates} dual "
                f"wordings), got {template}"
            )
        return cls(
            masked_text=row["masked_text"],
            variable=row["variable"],
            value=cls._value_text(row["value"]),
            template=template,
        )

    @staticmethod
    def _shown(value: Any) -> str:
        return _shown(value)

    @classmethod
    def _value_text(cls, value: Any) -> str:
        """Non-blank text, or a finite number as text (`prepare` writes text; hand-written rows may
        hold `5`). A blank value could never be rebuilt: the row would score 0 silently."""
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return str(int(value))
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            return str(float(value))
        raise ValueError(
            f"dual question field 'value' must be non-blank text or a finite number, got {cls._shown(value)}"
        )

    @classmethod
    def _template_index(cls, value: Any) -> int:
        """The index of the dual wording: a whole number >= 0 (absent or null: 0)."""
        if value is None:
            return 0
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            whole = isinstance(value, numbers.Integral) or (math.isfinite(value) and float(value).is_integer())
            if whole and value >= 0:
                return int(value)
        raise ValueError(f"dual question field 'template' must be a whole number >= 0, got {cls._shown(value)}")

@dataclass(frozen=True)
class DualReply:
    """The assistant reply a dual prompt asks for, split around the hidden value.

    Likelihood duals score only the tokens of `value`, read after the dual prompt and `prefix`
    (math: `\\boxed{`). `suffix` is the rest of the reply; a causal model's log-probs of the value
    never depend on it, so it is never sent.
    """

    prefix: str
    value: str
    suffix: str = ""

    @property
    def text(self) -> str:
        return self.prefix + self.value + self.suffix


@dataclass
class Decomposition:
    """What `DualTask.decompose` found: the dual questions and the candidates skipped, by reason."""

    duals: list[DualQuestion] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


class DualTask(ABC):
    """Base class of a DuPO task. Subclasses set `name` and `ability` and implement the methods."""

    name: str = ""
    ability: str = ""
    # A longer primal answer is not sent to the dual (bounds dual prompt size and gaming by listing values).
    max_answer_chars: int = 256
    # How many dual wordings `DualQuestion.template` may index (None: the task has no such list).
    dual_templates: int | None = None

    def __init__(self, **params: Any) -> None:
        # Task parameters (languages, similarity, ...) travel in extra_info["dupo"]["params"].
        self.params = dict(params)

    def check_declaration(self) -> None:
        """TypeError naming this task and attribute when a declared attribute has the wrong type or
        range; called when the task is built (`get_task`), so a user task's mistake stops the job at
        start-up in one line, not every sample with a traceback (a None `max_answer_chars`), or never
        (a NaN one disabled the length guard)."""
        label = f"task {self.name or type(self).__qualname__!r}"
        for attr in ("name", "ability"):
            if not isinstance(getattr(self, attr, None), str):
                raise TypeError(f"{label}: attribute {attr!r} must be text, got {_shown(getattr(self, attr, None))}")
        for attr, nullable in (("max_answer_chars", False), ("dual_templates", True)):
            value = getattr(self, attr, None)
            if value is None and nullable:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                allowed = "a whole number >= 1" + (" or None" if nullable else "")
                raise TypeError(f"{label}: attribute {attr!r} must be {allowed}, got {_shown(value)}")
        if not isinstance(getattr(self, "params", None), dict):
            raise TypeError(f"{label}: call DualTask.__init__ (self.params must be a dict of the task's parameters)")

    @abstractmethod
    def decompose(self, example: Mapping[str, Any], seed: int = 0) -> Decomposition:
        """Dual questions for one raw example (may be empty, with skip reasons counted)."""

    @abstractmethod
    def primal_messages(self, example: Mapping[str, Any]) -> Messages:
        """Chat messages of the primal task x -> y."""

    @abstractmethod
    def extract_primal_answer(self, response: str) -> str | None:
        """The part of the primal response the dual sees (math: the final answer); None if absent."""

    @abstractmethod
    def dual_messages(self, dual: DualQuestion, primal_answer: str) -> Messages:
        """Chat messages asking the model to rebuild `dual.value` from the primal answer and known part."""

    @abstractmethod
    def score_reconstruction(self, dual: DualQuestion, dual_response: str) -> float:
        """Similarity in [0, 1] between the hidden value and the dual's reconstruction (never raises)."""

    def dual_reply(self, dual: DualQuestion) -> DualReply:
        """The reply to `dual_messages` that rebuilds the hidden value, in the format that prompt asks
        for; used by likelihood duals (`dual_mode=likelihood`). Default: the bare value, right for a
        prompt that says "reply with the value only" (two_sum, span, translation). Override when the
        prompt asks for a wrapper (math: `\\boxed{value}`); raise `LikelihoodUnsupported` when the
        hidden value cannot be written as a reply."""
        return DualReply(prefix="", value=dual.value)

    def check_likelihood(self) -> None:
        """Raise `LikelihoodUnsupported` (with the reason) if this task cannot be scored in likelihood
        mode; called once at start-up, before any generation. Default: supported."""
        return None

    def leaks(self, dual: DualQuestion, primal_answer: str) -> bool:
        """True if the primal answer gives the hidden part away (it is then not sent to the dual)."""
        return False

    def reject_answer(self, primal_answer: str, duals: Sequence[DualQuestion]) -> str | None:
        """Why this primal answer must not be paid by the dual (a round-trip shortcut), or None.

        A reason is one of `REJECTION_REASONS`; the scorer then gives the no-answer reward and counts
        the answer in the metric `dupo_<reason>`. Default: every answer goes to the dual.
        """
        return None

    def answers_equal(self, a: str, b: str) -> bool:
        """Whether two primal answers are the same answer (groups candidates in filter and rerank)."""
        return " ".join(a.split()) == " ".join(b.split())

    def gold_score(self, response: str, ground_truth: str) -> float | None:
        """Verifiable reward against a gold label, or None when the task has none."""
        return None
