"""Offline generation backends (vLLM, OpenAI-compatible HTTP, transformers) for filter and rerank.

All three take batches of chat requests (`GenerationBackend.agenerate`); `MicroBatcher` puts the
`dupo_verl.scoring.GenerateFn` shape in front of any of them. Backends import their heavy
dependencies only when built.
"""

from dupo_verl.generation.base import (
    GenerationBackend,
    GenerationError,
    GenerationRequest,
    GenerationStats,
    SyncBackend,
    ValueRequest,
    request_seed,
)
from dupo_verl.generation.batcher import MicroBatcher

__all__ = [
    "GenerationBackend",
    "GenerationError",
    "GenerationRequest",
    "GenerationStats",
    "MicroBatcher",
    "SyncBackend",
    "ValueRequest",
    "request_seed",
]
