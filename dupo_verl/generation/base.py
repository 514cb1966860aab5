"""The batched generation interface shared by the offline backends (vLLM, OpenAI HTTP, transformers).

A backend takes a whole batch of chat requests at once, because that is what makes vLLM offline
fast. Each request carries its own seed, derived from a stable session id, so a row's samples do
not depend on which other rows happened to share its batch (the reason `--resume` can reproduce an
uninterrupted run exactly on backends that honour per-request seeds).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dupo_verl.control_text import tokenizer_control_texts
from dupo_verl.scoring import Completion
from dupo_verl.tasks import DualReply

Messages = list[dict[str, str]]

# One entry per request of a batch: its completions, or the error that request ended with.
BatchResult = list["list[Completion] | BaseException"]


class GenerationError(RuntimeError):
    """A request that failed for good (after the backend's own retries)."""


@dataclass(frozen=True)
class GenerationRequest:
    """`n` samples of one chat conversation with its sampling settings."""

    messages: Messages
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class ValueRequest:
    """Likelihood dual: the log-probs of `reply.value` after `messages` and `reply.prefix` (one prefill)."""

    messages: Messages
    reply: DualReply


# One entry per value request: the value tokens' log-probs, or the error that request ended with.
ValueResult = list["list[float] | BaseException"]


def request_seed(base_seed: int, session_id: str, messages: Sequence[Mapping[str, Any]] = ()) -> int:
    """A stable 31-bit seed for one request (same inputs, same seed, in any process).

    >>> request_seed(0, "row1/primal") == request_seed(0, "row1/primal")
    True
    >>> request_seed(0, "row1/primal") != request_seed(1, "row1/primal")
    True
    """
    payload = json.dumps([base_seed, session_id, list(messages)], sort_keys=True, ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(payload.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


@dataclass
class GenerationStats:
    """What a backend was asked for; counted by the micro-batcher."""

    requests: int = 0
    samples: int = 0
    batches: int = 0
    failed_requests: int = 0
    completion_tokens: int = 0
    batch_sizes: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        sizes = self.batch_sizes
        return {
            "requests": self.requests,
            "samples": self.samples,
            "batches": self.batches,
            "failed_requests": self.failed_requests,
            "completion_tokens": self.completion_tokens,
            "mean_batch_size": (sum(sizes) / len(sizes)) if sizes else 0.0,
            "max_batch_size": max(sizes) if sizes else 0,
        }


class GenerationBackend(ABC):
    """A batched chat generator.

    One failing request must not fail the others when the backend can tell them apart: its slot in
    the result holds the exception instead of completions.
    """

    name: str = ""
    # Hints for the micro-batcher: how many requests per call, how many calls at once.
    max_batch_size: int = 256
    max_concurrent_batches: int = 1

    @property
    def control_texts(self) -> frozenset[str]:
        """Special-token strings of the model's tokenizer, refused in answers (`dupo_verl.control_text`)."""
        return tokenizer_control_texts(getattr(self, "tokenizer", None))

    @abstractmethod
    async def agenerate(self, requests: Sequence[GenerationRequest]) -> BatchResult:
        """Batched generation without blocking the event loop."""

    async def ascore_values(self, requests: Sequence[ValueRequest]) -> ValueResult:
        """Likelihood duals (`dual_mode=likelihood`): each request's value log-probs, one prefill each."""
        raise NotImplementedError(f"the {self.name!r} backend cannot score likelihood duals")

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to free
        """Free the model or connections."""

    async def aclose(self) -> None:
        self.close()


class SyncBackend(GenerationBackend):
    """Base for blocking backends (vLLM offline, transformers): `generate` is the one method to write.

    `agenerate` runs it in a worker thread, so the event loop keeps collecting the next batch.
    """

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> BatchResult:
        """Blocking batched generation."""

    async def agenerate(self, requests: Sequence[GenerationRequest]) -> BatchResult:
        return await asyncio.to_thread(self.generate, list(requests))

    def score_values(self, requests: Sequence[ValueRequest]) -> ValueResult:
        """Blocking `ascore_values`."""
        raise NotImplementedError(f"the {self.name!r} backend cannot score likelihood duals")

    async def ascore_values(self, requests: Sequence[ValueRequest]) -> ValueResult:
        return await asyncio.to_thread(self.score_values, list(requests))
