"""A task whose dual reply *is* its score, and a scripted `GenerateFn`, for the scorer's own tests.

`EchoTask` lets a test pick any similarity in [0, 1]: the dual's reply "0.25" scores 0.25. The
primal answer is the stripped response; the answer "LEAK" gives every hidden value away.
`ScriptedGenerate` plays the dual server: each call returns what `reply(messages, n, attempt)`
gives (a list of completions, anything malformed, or an exception to raise) and records the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dupo_verl.scoring import Completion
from dupo_verl.tasks import Decomposition, DualQuestion, DualTask, Messages, register_task

TASK = "scoring_test_echo"


@register_task(TASK)
class EchoTask(DualTask):
    """x = a list of hidden values; the dual's reply is parsed as the similarity itself."""

    ability = "test"

    def decompose(self, example: Mapping[str, Any], seed: int = 0) -> Decomposition:
        return Decomposition(
            duals=[DualQuestion(f"q{i}", "V", str(v)) for i, v in enumerate(example["values"])]
        )

    def primal_messages(self, example: Mapping[str, Any]) -> Messages:
        return [{"role": "user", "content": "primal"}]

    def extract_primal_answer(self, response: str) -> str | None:
        return response.strip() or None

    def dual_messages(self, dual: DualQuestion, primal_answer: str) -> Messages:
        return [{"role": "user", "content": f"DUAL {dual.masked_text} given {primal_answer}"}]

    def score_reconstruction(self, dual: DualQuestion, dual_response: str) -> float:
        try:
            return float(dual_response)
        except ValueError:
            return 0.0

    def leaks(self, dual: DualQuestion, primal_answer: str) -> bool:
        return primal_answer == "LEAK"

    def gold_score(self, response: str, ground_truth: str) -> float | None:
        return 1.0 if response.strip() == ground_truth.strip() else 0.0


def duals(n: int = 1) -> list[DualQuestion]:
    return EchoTask().decompose({"values": list(range(n))}).duals


@dataclass
class ScriptedGenerate:
    """A dual server scripted per call; `reply` may return a list, anything else, or an exception."""

    reply: Callable[[Messages, int, int], Any]
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(
        self,
        messages: Messages,
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        session_id: str,
    ) -> Any:
        attempt = sum(1 for c in self.calls if c["session_id"] == session_id)
        self.calls.append({"messages": messages, "n": n, "session_id": session_id})
        await asyncio.sleep(0)
        out = self.reply(messages, n, attempt)
        if isinstance(out, BaseException):
            raise out
        return out


def scores_reply(*scores: float) -> Callable[[Messages, int, int], list[Completion]]:
    """Every call answers with these scores (as dual replies of 3 tokens each), whatever `n` was."""
    return lambda messages, n, attempt: [Completion(repr(float(s)), 3) for s in scores]
