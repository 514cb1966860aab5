"""Sampling a problem's candidate solutions (the primal pass), with retries."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dupo_verl.scoring import Completion, GenerateFn
from dupo_verl.tasks import Messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrimalSampling:
    """How candidate solutions are sampled."""

    n: int = 16
    temperature: float = 0.8
    top_p: float = 1.0
    max_tokens: int = 4096

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_tokens < 1:
            raise ValueError("the number of candidates and max tokens must be >= 1")


@dataclass
class PrimalResult:
    completions: list[Completion]
    failed_attempts: int = 0
    error: str | None = None  # set when every attempt failed


async def sample_candidates(
    messages: Messages,
    generate: GenerateFn,
    sampling: PrimalSampling,
    session_id: str,
    max_retries: int = 1,
) -> PrimalResult:
    """`sampling.n` solutions of one problem; after `max_retries` failed retries, the error."""
    failed = 0
    error = None
    for attempt in range(max_retries + 1):
        try:
            completions = await generate(
                messages,
                n=sampling.n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
                session_id=session_id,
            )
            return PrimalResult(completions=list(completions)[: sampling.n], failed_attempts=failed)
        except Exception as exc:
            failed += 1
            error = repr(exc)
            logger.warning("candidate sampling failed (attempt %d, %s): %s", attempt + 1, session_id, error)
    return PrimalResult(completions=[], failed_attempts=failed, error=error)
