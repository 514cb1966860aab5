"""The one DuPO judgement: how well can the dual rebuild the hidden part from a primal answer?

Used by the self-dual agent loop, the frozen-dual reward manager, the offline filter and the
reranker. It knows nothing of verl: `generate` is whatever the caller has (verl's server client,
an OpenAI-compatible router, vLLM, transformers). It never raises for one bad sample: failures are
retried, then scored as failures and counted in the metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Protocol

from dupo_verl.tasks import DualQuestion, DualTask, Messages, get_task

logger = logging.getLogger(__name__)

# Every sample carries exactly these keys (verl V0 takes the key set of the first sample).
METRIC_KEYS: tuple[str, ...] = (
    "dupo_reward",
    "dupo_dual_acc",
    "dupo_dual_questions",
    "dupo_dual_samples",
    "dupo_dual_tokens",
    "dupo_no_answer",
    "dupo_too_long",
    "dupo_leaks",
    "dupo_dual_errors",
    "dupo_has_gold",
    "dupo_gold_acc",
    "dupo_agrees_with_gold",
)

# How the accuracies of one rollout's dual questions become one: their mean, or an ensemble's
# agreement (min: a wrong answer one dual happens to confirm is caught by another, method doc).
DUAL_AGGREGATES = {"mean": lambda accs: sum(accs) / len(accs), "min": min}


@dataclass(frozen=True)
class DualOptions:
    """How the dual pass is run and turned into a reward (all overridable from Hydra)."""

    dual_questions_per_rollout: int = 2
    dual_samples: int = 1
    dual_temperature: float = 0.6
    dual_top_p: float = 1.0
    dual_max_tokens: int = 256
    dual_aggregate: str = "mean"  # over a rollout's dual questions: "mean", or "min" (all must agree)
    shaping_lambda: float | None = None  # None: reward = mean similarity; else exp(-lambda * (1 - mean))
    hybrid_weight: float = 0.0  # weight of the gold-label reward when a row has one (0: label-free)
    no_answer_reward: float = 0.0
    max_answer_chars: int | None = None  # None: the task's own bound (`DualTask.max_answer_chars`)
    max_retries: int = 1

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> DualOptions:
        """Build from YAML/Hydra kwargs; unknown keys are an error so typos don't pass silently."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DuPO option(s) {unknown}; known: {sorted(known)}")
        opts = cls(**values)
        opts.validate()
        return opts

    def validate(self) -> None:
        if self.dual_questions_per_rollout < 1 or self.dual_samples < 1:
            raise ValueError("dual_questions_per_rollout and dual_samples must be >= 1")
        if self.dual_max_tokens < 1:
            raise ValueError("dual_max_tokens must be >= 1")
        if not 0.0 <= self.hybrid_weight <= 1.0:
            raise ValueError(f"hybrid_weight must be in [0, 1], got {self.hybrid_weight}")
        if self.shaping_lambda is not None and self.shaping_lambda < 0:
            raise ValueError(f"shaping_lambda must be >= 0, got {self.shaping_lambda}")
        if self.dual_aggregate not in DUAL_AGGREGATES:
            raise ValueError(f"dual_aggregate must be one of {sorted(DUAL_AGGREGATES)}, got {self.dual_aggregate!r}")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")


@dataclass(frozen=True)
class Completion:
    """One generated dual answer."""

    text: str
    num_tokens: int


class GenerateFn(Protocol):
    """Chat generation used for the dual pass: `n` samples of one conversation.

    `session_id` is the same for all samples of one dual question, so servers with sticky
    sessions can reuse the prefix cache.
    """

    async def __call__(
        self,
        messages: Messages,
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        session_id: str,
    ) -> list[Completion]: ...


@dataclass
class Judgement:
    """Dual result for one (dual question, primal answer): one score per dual sample."""

    scores: list[float]
    tokens: int = 0
    errors: int = 0

    @property
    def accuracy(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0


@dataclass
class DuPOReward:
    reward: float
    metrics: dict[str, float]


@lru_cache(maxsize=64)
def _cached_task(name: str, params_json: str) -> DualTask:
    return get_task(name, **json.loads(params_json))


def task_from_info(dupo_info: Mapping[str, Any]) -> tuple[DualTask, list[DualQuestion]]:
    """The task and dual questions stored in `extra_info["dupo"]` (clear error when malformed)."""
    if not isinstance(dupo_info, Mapping) or "task" not in dupo_info:
        raise ValueError(f"extra_info['dupo'] must be a mapping with a 'task' key, got {dupo_info!r:.200}")
    params = {k: v for k, v in dict(dupo_info.get("params") or {}).items() if v is not None}
    task = _cached_task(str(dupo_info["task"]), json.dumps(params, sort_keys=True))
    duals = [DualQuestion.from_dict(d) for d in (dupo_info.get("duals") or [])]
    return task, duals


async def judge_answer(
    task: DualTask,
    dual: DualQuestion,
    answer: str,
    generate: GenerateFn,
    options: DualOptions,
    session_id: str,
) -> Judgement:
    """Ask the dual `options.dual_samples` times to rebuild `dual.value` given `answer`."""
    messages = task.dual_messages(dual, answer)
    k = options.dual_samples
    errors = 0
    for attempt in range(options.max_retries + 1):
        try:
            completions = await generate(
                messages,
                n=k,
                temperature=options.dual_temperature,
                top_p=options.dual_top_p,
                max_tokens=options.dual_max_tokens,
                session_id=session_id,
            )
            break
        except Exception as exc:  # a failed dual call must not crash a training step
            errors += 1
            logger.warning("dual generation failed (attempt %d, session %s): %r", attempt + 1, session_id, exc)
    else:
        return Judgement(scores=[0.0] * k, tokens=0, errors=errors)
    # Off the event loop: a non-numeric reconstruction may take math-verify up to its time bound.
    scores = await asyncio.to_thread(lambda: [_safe_score(task, dual, c.text) for c in completions[:k]])
    scores += [0.0] * (k - len(scores))  # a server that returned fewer samples than asked
    return Judgement(scores=scores, tokens=sum(c.num_tokens for c in completions), errors=errors)


def _safe_score(task: DualTask, dual: DualQuestion, text: str) -> float:
    try:
        score = float(task.score_reconstruction(dual, text))
    except Exception as exc:
        logger.warning("scoring a dual reconstruction failed: %r", exc)
        return 0.0
    return min(1.0, max(0.0, score)) if math.isfinite(score) else 0.0


def shape(similarity: float, options: DualOptions) -> float:
    """The paper's exp(-lambda * d) shaping with d = 1 - similarity (identity when lambda is None)."""
    if options.shaping_lambda is None:
        return similarity
    return math.exp(-options.shaping_lambda * (1.0 - similarity))


async def score_response(
    task: DualTask,
    duals: Sequence[DualQuestion],
    response: str,
    generate: GenerateFn,
    options: DualOptions,
    session_id: str,
    ground_truth: str | None = None,
) -> DuPOReward:
    """DuPO reward of one primal response plus the fixed set of metrics in `METRIC_KEYS`."""
    metrics = dict.fromkeys(METRIC_KEYS, 0.0)
    answer = task.extract_primal_answer(response)
    chosen = list(duals[: options.dual_questions_per_rollout])
    dual_acc: float | None = None
    if answer is None or not answer.strip():
        metrics["dupo_no_answer"] = 1.0
    elif len(answer) > (options.max_answer_chars or task.max_answer_chars):
        metrics["dupo_too_long"] = 1.0
    else:
        usable = [d for d in chosen if not task.leaks(d, answer)]
        metrics["dupo_leaks"] = float(len(chosen) - len(usable))
        judgements = await asyncio.gather(
            *(
                judge_answer(task, d, answer, generate, options, f"{session_id}-dual{i}")
                for i, d in enumerate(usable)
            )
        )
        if judgements:
            dual_acc = DUAL_AGGREGATES[options.dual_aggregate]([j.accuracy for j in judgements])
        metrics["dupo_dual_questions"] = float(len(judgements))
        metrics["dupo_dual_samples"] = float(sum(len(j.scores) for j in judgements))
        metrics["dupo_dual_tokens"] = float(sum(j.tokens for j in judgements))
        metrics["dupo_dual_errors"] = float(sum(j.errors for j in judgements))
    reward = options.no_answer_reward if dual_acc is None else shape(dual_acc, options)
    metrics["dupo_dual_acc"] = dual_acc if dual_acc is not None else 0.0
    gold = task.gold_score(response, ground_truth) if ground_truth else None
    if gold is not None:
        metrics["dupo_has_gold"] = 1.0
        metrics["dupo_gold_acc"] = gold
        metrics["dupo_agrees_with_gold"] = float((reward >= 0.5) == (gold >= 0.5))
        if options.hybrid_weight > 0:
            reward = (1.0 - options.hybrid_weight) * reward + options.hybrid_weight * gold
    metrics["dupo_reward"] = reward
    return DuPOReward(reward=reward, metrics=metrics)
