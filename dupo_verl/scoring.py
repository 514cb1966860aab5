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
import numbers
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from dupo_verl.control_text import control_text_in
from dupo_verl.likelihood import check_logprobs
from dupo_verl.plain import to_plain
from dupo_verl.shared_calls import shared_call
from dupo_verl.task_calls import TaskCodeTimeout, run_task_code, task_code_tally
from dupo_verl.tasks import DualQuestion, DualReply, DualTask, Messages, get_task
from reward_fns.math import verify_tally
from reward_fns.shaping import exp_shaping

logger = logging.getLogger(__name__)
T = TypeVar("T")

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
    "dupo_wrong_language",
    "dupo_near_copy",
    "dupo_partial_copy",
    "dupo_dual_errors",
    "dupo_dual_timeouts",
    "dupo_verify_timeouts",
    "dupo_dual_missing",
    "dupo_has_gold",
    "dupo_gold_acc",
    "dupo_agrees_with_gold",
    "dupo_dual_logprob",
    "dupo_dual_logprob_sum",
    "dupo_judge_disagreement",
    "dupo_task_timeouts",
    "dupo_task_seconds",
)

# How the accuracies of one rollout's dual questions become one: their mean, or an ensemble's
# agreement (min: a wrong answer one dual happens to confirm is caught by another, method doc).
DUAL_AGGREGATES = {"mean": lambda accs: sum(accs) / len(accs), "min": min}

# How a dual question is asked: sample answers and check them, or read the log-probability of the
# true hidden value after the dual prompt in one prefill (no decoding).
DUAL_MODES = ("sample", "likelihood")

# Who judges: the live self-dual alone, or anchored (the live self-dual AND a frozen copy of the
# starting policy behind verl's reward model, aggregated with `dual_aggregate`).
JUDGES = ("self", "anchored")


@dataclass(frozen=True)
class _Rule:
    """Type and range of one option; `validate` names the option and value when one is broken."""

    kind: str  # "int", "real" or "choice"
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is refused
    nullable: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "choice":
            text = f"one of {list(self.choices)}"
        else:
            text = "an integer" if self.kind == "int" else "a finite number"
            if self.low is not None and self.high is not None:
                text += f" in {'(' if self.low_open else '['}{_bound(self.low)}, {_bound(self.high)}]"
            elif self.low is not None:
                text += f" {'>' if self.low_open else '>='} {_bound(self.low)}"
        return text + (", or null" if self.nullable else "")

    def check(self, name: str, value: Any) -> Any:
        """`value` as the field's own type (an int for a float field is fine), or ValueError."""
        if value is None and self.nullable:
            return None
        if self.kind == "choice":
            ok = isinstance(value, str) and value in self.choices
            checked: Any = value
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            ok = False  # bools are not numbers here; strings are not parsed
        elif self.kind == "int":
            ok = isinstance(value, numbers.Integral)
            checked = int(value) if ok else value
        else:
            try:
                checked = float(value)
            except OverflowError:  # an int past the float range, e.g. 10**400
                checked = math.inf
            ok = math.isfinite(checked)
        if ok and self.kind != "choice":
            ok = (self.low is None or checked > self.low or (checked == self.low and not self.low_open)) and (
                self.high is None or checked <= self.high
            )
        if not ok:
            raise ValueError(
                f"DuPO option {name}={value!r:.100} ({type(value).__name__}) is invalid: expected {self.describe()}"
            )
        return checked


def _bound(value: float) -> str:
    """A range bound as people write it: 1048576, not 1.04858e+06."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# Upper bounds: beyond them a value is a typo, not a setting, and would only turn into an absurd
# metric, an OverflowError in the scorer or an event loop blocked by retries.
# A dual call may wait behind a whole rollout batch on a busy server; a day is an absurd bound.
MAX_DUAL_TIMEOUT_S = 86_400.0
# Below a millisecond every call times out: each question would score 0 as a dual error.
MIN_DUAL_TIMEOUT_S = 0.001
MAX_DUAL_SAMPLES = 1024
MAX_DUAL_QUESTIONS = 1024
MAX_DUAL_TOKENS = 1_048_576
MAX_RETRIES = 100
MAX_TEMPERATURE = 100.0


def _option(default: Any, rule: _Rule, help: str) -> Any:
    return field(default=default, metadata={"help": help, "rule": rule})


@dataclass(frozen=True)
class DualOptions:
    """How the dual pass is run and turned into a reward (all overridable from Hydra: `+dupo.<key>`).

    Every field is checked for type and range on construction, so a bad value stops the job at
    start-up with one line naming it instead of turning into NaN or out-of-range rewards.
    """

    dual_questions_per_rollout: int = _option(
        2,
        _Rule("int", 1, MAX_DUAL_QUESTIONS),
        "Dual questions asked per rollout (the row's first ones); an integer in [1, 1024].",
    )
    dual_samples: int = _option(
        1,
        _Rule("int", 1, MAX_DUAL_SAMPLES),
        "Dual answers K sampled per dual question; its accuracy is the mean score of the answers "
        "returned; an integer in [1, 1024].",
    )
    dual_temperature: float = _option(
        0.6,
        _Rule("real", 0.0, MAX_TEMPERATURE),
        "Sampling temperature of the dual answers; a number in [0, 100]. At 0 (greedy) "
        "rollouts that gave the same answer at the same time share one dual answer."
    )
    dual_top_p: float = _option(
        1.0, _Rule("real", 0.0, 1.0, low_open=True), "Nucleus top-p of the dual answers; a number in (0, 1]."
    )
    dual_max_tokens: int = _option(
        256, _Rule("int", 1, MAX_DUAL_TOKENS), "Token budget of each dual answer; an integer in [1, 1048576]."
    )
    dual_aggregate: str = _option(
        "mean",
        _Rule("choice", choices=tuple(DUAL_AGGREGATES)),
        "How a rollout's dual-question accuracies become one: mean, or min (an ensemble: all must agree).",
    )
    shaping_lambda: float | None = _option(
        None,
        _Rule("real", 0.0, nullable=True, low_open=True),
        "null: reward = aggregated dual accuracy; a finite lambda > 0: reward = exp(-lambda * (1 - accuracy)) "
        "(0 would pay 1.0 for every answer).",
    )
    hybrid_weight: float = _option(
        0.0,
        _Rule("real", 0.0, 1.0),
        "Weight in [0, 1] of the gold-label reward on rows that have one (0: label-free).",
    )
    no_answer_reward: float = _option(
        0.0,
        _Rule("real", 0.0, 1.0),
        "Reward in [0, 1] of a response with no usable answer (none, too long, rejected, or every dual leaked).",
    )
    max_answer_chars: int | None = _option(
        None,
        _Rule("int", 1, nullable=True),
        "Longer final answers are not sent to the dual (anti-gaming); an integer >= 1, or null for the task's bound.",
    )
    max_retries: int = _option(
        1,
        _Rule("int", 0, MAX_RETRIES),
        "Retries of a failed or timed-out dual call before it scores 0 and is counted; an integer in [0, 100].",
    )
    dual_timeout_s: float = _option(
        1800.0,
        _Rule("real", MIN_DUAL_TIMEOUT_S, MAX_DUAL_TIMEOUT_S),
        "Seconds one dual call may take before it counts as a failed attempt (then retried); "
        "a number in [0.001, 86400].",
    )
    dual_mode: str = _option(
        "sample",
        _Rule("choice", choices=DUAL_MODES),
        "How a dual question is asked: sample (dual_samples answers, checked) or likelihood "
        "(similarity = exp(mean log-prob) in [0, 1] of the true hidden value, one prefill; rollouts that gave "
        "the same answer at the same time share that prefill).",
    )
    task_timeout_s: float = _option(
        600.0,
        _Rule("real", MIN_DUAL_TIMEOUT_S, MAX_DUAL_TIMEOUT_S),
        "Seconds of wall time one call of the task's own code may take (answer extraction and guards, "
        "building a dual prompt, scoring the dual answers, the gold check) before it gives no verdict and "
        "is counted in dupo_task_timeouts; a number in [0.001, 86400]. The default leaves room for "
        "math-verify's checks on a loaded machine.",
    )
    judge: str = _option(
        "self",
        _Rule("choice", choices=JUDGES),
        "Who judges in dupo_agent: self (the live policy's dual) or anchored (the live dual and the frozen "
        "reward-model dual, aggregated by dual_aggregate; needs reward.reward_manager.name=dupo).",
    )

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> DualOptions:
        """Build from YAML/Hydra kwargs; unknown keys are an error so typos don't pass silently."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DuPO option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def validate(self) -> None:
        """Check every field's type and range (ValueError naming option and value); normalise numbers."""
        for f in fields(self):
            value = getattr(self, f.name)
            checked = f.metadata["rule"].check(f.name, value)
            if checked is not value:  # e.g. int 0 from `+dupo.no_answer_reward=0` becomes 0.0
                object.__setattr__(self, f.name, checked)


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


class ValueLogprobFn(Protocol):
    """The likelihood side of a dual backend (`dual_mode=likelihood`).

    `value_logprobs` returns the log-probability of each token of `reply.value`, read after the
    chat-templated `messages` and `reply.prefix` in one prefill with no decoding (token ids built
    by `dupo_verl.likelihood.reply_token_ids`). Every backend with a `GenerateFn` implements it once.
    A backend may also carry `shared_scope` (hashable: the model it asks, e.g. its server client):
    identical likelihood questions, and greedy sampled ones, in flight at once to the same scope are
    then asked once (`dupo_verl.shared_calls`).
    """

    async def value_logprobs(self, messages: Messages, reply: DualReply, *, session_id: str) -> list[float]: ...


@dataclass
class Judgement:
    """Dual result for one (dual question, primal answer): one score per dual answer actually scored.

    `errors` counts failed attempts (exceptions, timeouts, malformed replies; `timeouts` of them
    timed out); `missing` the answers asked for but not scored (a short or malformed reply, or a
    failed question); `failed` means no attempt succeeded. Likelihood mode: one score,
    exp(mean token log-prob) of the hidden value; `logprob` is that mean and `logprob_sum` the raw
    sum (None when the call failed).
    """

    scores: list[float]
    tokens: int = 0
    errors: int = 0
    logprob: float | None = None
    logprob_sum: float | None = None
    timeouts: int = 0
    missing: int = 0
    failed: bool = False

    @property
    def accuracy(self) -> float:
        """Mean score of the answers scored (a server's short reply does not count as wrong answers)."""
        return sum(self.scores) / len(self.scores) if self.scores else 0.0


@dataclass
class DuPOReward:
    reward: float
    metrics: dict[str, float]


@lru_cache(maxsize=64)
def _cached_task(name: str, params_json: str) -> DualTask:
    return get_task(name, **json.loads(params_json))


def task_from_info(dupo_info: Mapping[str, Any]) -> tuple[DualTask, list[DualQuestion]]:
    """The task and dual questions stored in `extra_info["dupo"]`; a malformed field raises one
    ValueError naming it (`params`, `duals`, `duals[i].<field>`), never Python's own message."""
    if not isinstance(dupo_info, Mapping) or "task" not in dupo_info:
        raise ValueError(f"extra_info['dupo'] must be a mapping with a 'task' key, got {dupo_info!r:.200}")
    raw_params = to_plain(dupo_info.get("params"))  # parquet readers give numpy values
    if raw_params is not None and not isinstance(raw_params, dict):
        raise ValueError(
            f"extra_info['dupo']['params'] must be a mapping of task parameters, got {_shown(raw_params)}"
        )
    params = {k: v for k, v in (raw_params or {}).items() if v is not None}
    try:
        params_json = json.dumps(params, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"extra_info['dupo']['params'] must hold plain values: {exc}") from None
    task = _cached_task(str(dupo_info["task"]), params_json)
    raw_duals = to_plain(dupo_info.get("duals"))
    if raw_duals is not None and not isinstance(raw_duals, list):
        raise ValueError(f"extra_info['dupo']['duals'] must be a list of dual questions, got {_shown(raw_duals)}")
    duals = []
    for i, item in enumerate(raw_duals or []):
        try:
            duals.append(DualQuestion.from_dict(item, task.dual_templates))
        except ValueError as exc:
            raise ValueError(f"extra_info['dupo']['duals'][{i}]: {exc} (task {task.name!r})") from None
    return task, duals


def _shown(value: Any) -> str:
    """A value's type and a short repr, for error messages."""
    return f"{type(value).__name__} {value!r:.60}"


async def _attempts(
    call: Callable[[], Awaitable[T]], options: DualOptions, what: str, session_id: str
) -> tuple[T | None, int, int]:
    """`call()` tried 1 + `max_retries` times, each bounded by `dual_timeout_s`: (result, errors, timeouts).

    The result is None when every attempt failed. The bound is the scorer's own: a server that never
    answers costs `dual_timeout_s` per attempt, not a hung training step.
    """
    errors = timeouts = 0
    for attempt in range(options.max_retries + 1):
        try:
            return await _within(call, options.dual_timeout_s), errors, timeouts
        except (TimeoutError, asyncio.TimeoutError):  # one class from Python 3.11 on
            errors += 1
            timeouts += 1
            bound = options.dual_timeout_s
            logger.warning("%s timed out after %gs (attempt %d, session %s)", what, bound, attempt + 1, session_id)
        except Exception as exc:  # a failed dual call must not crash a training step
            errors += 1
            logger.warning("%s failed (attempt %d, session %s): %r", what, attempt + 1, session_id, exc)
        # a backend that fails at once never suspends: without this the retries would hold the
        # event loop (every other rollout, and the caller's own timeouts) until the last one
        await asyncio.sleep(0)
    return None, errors, timeouts


async def _within(call: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """`call()` bounded by `timeout_s`, run in the caller's own task where Python allows it.

    Python 3.11's `wait_for` runs the call in a task of its own and drops a cancellation that arrives
    as that call ends: with a backend that fails at once every attempt ends so, and the retries
    outlived the caller's own timeout. `asyncio.timeout` (3.11+; `wait_for` itself from 3.12) has no
    such race.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout_s):
            return await call()
    return await asyncio.wait_for(call(), timeout=timeout_s)


def _reply_texts(reply: Any, k: int) -> tuple[list[str], int]:
    """The first `k` answers' texts that are strings, and their token count (malformed ones are dropped).

    The server's reply is untrusted: a token count that is not a whole number in [0, MAX_DUAL_TOKENS]
    counts as unknown (0), so it can neither overflow the float metric nor lose the answer's verdict.
    """
    texts, tokens = [], 0
    for completion in list(reply)[:k]:
        text = getattr(completion, "text", None)
        count = getattr(completion, "num_tokens", None)
        if isinstance(count, numbers.Integral) and not isinstance(count, bool) and 0 <= count <= MAX_DUAL_TOKENS:
            tokens += int(count)
        if isinstance(text, str):
            texts.append(text)
    return texts, tokens


async def judge_answer(
    task: DualTask,
    dual: DualQuestion,
    answer: str,
    generate: GenerateFn,
    options: DualOptions,
    session_id: str,
) -> Judgement:
    """Ask the dual `options.dual_samples` times to rebuild `dual.value` given `answer` (never raises)."""
    k = options.dual_samples
    try:
        messages = await run_task_code(
            task.name, "dual_messages", lambda: task.dual_messages(dual, answer), options.task_timeout_s)
    except Exception as exc:  # one bad row: a failed question, not a stopped run (a retry would fail again)
        logger.warning("building the dual prompt failed (session %s): %r", session_id, exc)
        return Judgement(scores=[], errors=1, missing=k, failed=True)

    # greedy answers are one deterministic decode, so identical questions in flight share it; sampled
    # ones are not shared (the rollouts of a group would get correlated verdicts)
    key = _shared_key(generate, messages, "greedy", k, options.dual_max_tokens) if options.dual_temperature == 0 else None

    async def ask() -> Sequence[Any]:
        def call() -> Awaitable[Any]:
            return generate(
                messages,
                n=k,
                temperature=options.dual_temperature,
                top_p=options.dual_top_p,
                max_tokens=options.dual_max_tokens,
                session_id=session_id,
            )

        reply = await (call() if key is None else shared_call(key, call))
        if not isinstance(reply, list | tuple):
            raise TypeError(f"dual generation returned {type(reply).__name__}, not a list of completions")
        return reply

    reply, errors, timeouts = await _attempts(ask, options, "dual generation", session_id)
    if reply is None:
        return Judgement(scores=[], errors=errors, timeouts=timeouts, missing=k, failed=True)
    texts, tokens = _reply_texts(reply, k)
    # Off the event loop: a non-numeric reconstruction may take math-verify up to its time bound.
    try:
        results = await run_task_code(
            task.name, "score_reconstruction", lambda: [_safe_score(task, dual, text) for text in texts],
            options.task_timeout_s)
    except Exception as exc:  # timed out (counted in dupo_task_timeouts) or raised past `_safe_score`
        if not isinstance(exc, TaskCodeTimeout):
            _unusable_score(task, "raised", repr(exc))
        return Judgement(scores=[], tokens=tokens, errors=errors + 1, timeouts=timeouts, missing=k, failed=True)
    scores = [score for score in results if score is not None]
    unusable = len(results) - len(scores)
    return Judgement(
        scores=scores, tokens=tokens, errors=errors + unusable, timeouts=timeouts, missing=k - len(scores),
        failed=unusable > 0 and not scores,
    )


def require_dual_mode(task: DualTask, options: DualOptions) -> None:
    """Raise `LikelihoodUnsupported` if `task` cannot be asked in `options.dual_mode` (a setup error:
    it stops training instead of being counted as a dual error)."""
    if options.dual_mode == "likelihood":
        task.check_likelihood()


def likelihood_similarity(logprobs: Sequence[float]) -> tuple[float, float, float]:
    """(similarity, mean log-prob, sum log-prob) of the hidden value's tokens.

    The similarity is exp(mean), the geometric mean of the token probabilities, in [0, 1]. The
    product (exp(sum)) would punish a value for its length: a 12-token sentence the dual finds 90 %
    likely per token would score 0.28 against 0.9 for a 1-token number, so rewards would not be
    comparable across values and tasks. The sum is kept as a metric.

    >>> likelihood_similarity([math.log(0.5), math.log(0.5)])[0]
    0.5
    """
    if not logprobs:
        raise ValueError("no value log-probs to score")
    # every backend checks its own reply; checked again here for any other `ValueLogprobFn`, so a
    # NaN/inf never reaches a metric (a ValueError is counted as a failed dual call)
    values = check_logprobs(logprobs, len(logprobs), "the dual backend")
    try:
        total = math.fsum(values)
    except OverflowError:
        total = -math.inf
    if not math.isfinite(total):
        raise ValueError(f"the value log-probs sum to {total}: unusable")
    mean = total / len(values)
    return min(1.0, max(0.0, math.exp(mean))), mean, total


def finite_mean(values: Sequence[float]) -> float:
    """The mean of finite values, divided before summing: two log-prob sums near -1.8e308 each must not
    average to -inf (a metric is never non-finite)."""
    return sum(v / len(values) for v in values)


def _shared_key(backend: Any, messages: Messages, *question: Any) -> tuple | None:
    """What makes two dual calls the same call: the backend's scope, the prompt and `question` (what
    is asked of it); None when the backend shares nothing (`dupo_verl.shared_calls`)."""
    scope = getattr(backend, "shared_scope", None)
    if scope is None:
        return None
    try:
        return (scope, json.dumps(messages, sort_keys=True), *question)
    except (TypeError, ValueError):  # a user task's messages that JSON cannot spell: asked on their own
        return None


async def judge_likelihood(
    task: DualTask,
    dual: DualQuestion,
    answer: str,
    backend: ValueLogprobFn,
    options: DualOptions,
    session_id: str,
) -> Judgement:
    """How likely the dual finds the true `dual.value` given `answer` (one prefill, retried like sampling)."""
    try:
        messages, reply = await run_task_code(
            task.name, "dual_messages", lambda: (task.dual_messages(dual, answer), checked_dual_reply(task, dual)),
            options.task_timeout_s)
    except Exception as exc:  # one bad row: a failed question, not a stopped run
        logger.warning("building the dual prompt failed (session %s): %r", session_id, exc)
        return Judgement(scores=[], errors=1, missing=1, failed=True)

    key = _shared_key(backend, messages, "likelihood", reply.prefix, reply.value)

    async def ask() -> tuple[float, float, float]:
        if key is None:
            return likelihood_similarity(await backend.value_logprobs(messages, reply, session_id=session_id))
        return likelihood_similarity(
            await shared_call(key, lambda: backend.value_logprobs(messages, reply, session_id=session_id)))

    result, errors, timeouts = await _attempts(ask, options, "dual log-prob call", session_id)
    if result is None:
        return Judgement(scores=[], errors=errors, timeouts=timeouts, missing=1, failed=True)
    similarity, mean, total = result
    return Judgement(scores=[similarity], errors=errors, timeouts=timeouts, logprob=mean, logprob_sum=total)


def checked_dual_reply(task: DualTask, dual: DualQuestion) -> DualReply:
    """`task.dual_reply(dual)`, TypeError naming the task unless it is a `DualReply` of text parts."""
    reply = task.dual_reply(dual)
    if not isinstance(reply, DualReply) or not all(isinstance(p, str) for p in (reply.prefix, reply.value, reply.suffix)):
        raise TypeError(f"task {task.name!r}: dual_reply must return a DualReply of text parts, got {reply!r:.80}")
    if not reply.value.strip():
        raise ValueError(f"task {task.name!r}: dual_reply gave a blank value, which has no tokens to score")
    return reply


async def judge_dual(
    task: DualTask,
    dual: DualQuestion,
    answer: str,
    generate: GenerateFn,
    options: DualOptions,
    session_id: str,
) -> Judgement:
    """One dual question asked in `options.dual_mode`: the one entry point for training, filter and rerank.

    Likelihood mode needs `generate` to be a `ValueLogprobFn` too (every shipped backend is).
    """
    if options.dual_mode == "likelihood":
        return await judge_likelihood(task, dual, answer, generate, options, session_id)  # type: ignore[arg-type]
    return await judge_answer(task, dual, answer, generate, options, session_id)


_SCORE_SLACK = 1e-9  # float error past 0 or 1 (1.0000000000000002) is clipped; more is the task's bug
_warned_scores: set[tuple[str, str]] = set()


def _safe_score(task: DualTask, dual: DualQuestion, text: str) -> float | None:
    """`task.score_reconstruction` as a number in [0, 1], or None (counted as a dual error by the
    caller) when it raised or gave no such number: a NaN, 7 or "yes" folded into 0 or 1 would look
    like a real verdict. Logged once per task and kind of fault."""
    try:
        score = task.score_reconstruction(dual, text)
    except Exception as exc:
        return _unusable_score(task, "raised", repr(exc))
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        return _unusable_score(task, "not a number", f"{type(score).__name__} {score!r:.60}")
    try:
        value = float(score)
    except (OverflowError, ValueError):  # 10**400
        value = math.inf
    if not math.isfinite(value) or not -_SCORE_SLACK <= value <= 1 + _SCORE_SLACK:
        return _unusable_score(task, "gave no number in [0, 1]", f"{score!r:.60}")
    return min(1.0, max(0.0, value))


def _warn_task_once(task: DualTask, kind: str, message: str, *args: Any) -> None:
    """Log a fault of a task's code once per task and kind (it would recur on every sample)."""
    if (task.name, kind) not in _warned_scores:
        _warned_scores.add((task.name, kind))
        logger.warning(message + " Logged once per task.", *args)


def _unusable_score(task: DualTask, kind: str, detail: str) -> None:
    _warn_task_once(task, kind, "score_reconstruction of task %r %s (%s); that dual answer counts as a dual "
                    "error (dupo_dual_errors), not as a verdict.", task.name, kind, detail)
    return None


def _rejection(task: DualTask, answer: str, duals: Sequence[DualQuestion]) -> str | None:
    """The metric key of the task's guard that rejects this answer (`DualTask.reject_answer`), or None."""
    try:
        reason = task.reject_answer(answer, duals)
    except Exception as exc:  # a broken guard must not stop a training step: the answer goes to the dual
        logger.warning("answer guard of task %s failed: %r", task.name, exc)
        return None
    if reason is None:
        return None
    key = f"dupo_{reason}"
    if key not in METRIC_KEYS:
        logger.warning("task %s rejected an answer for unknown reason %r; counted as no answer", task.name, reason)
        return "dupo_no_answer"
    return key


def shape(similarity: float, options: DualOptions) -> float:
    """The paper's exp(-lambda * d) shaping with d = 1 - similarity (identity when lambda is None)."""
    if options.shaping_lambda is None:
        return similarity
    return exp_shaping(1.0 - similarity, options.shaping_lambda)


def leaks_safely(task: DualTask, dual: DualQuestion, answer: str) -> bool:
    """`task.leaks`, where a broken leak check counts as a leak (that dual is then never asked)."""
    try:
        verdict = task.leaks(dual, answer)
        if isinstance(verdict, str) or verdict not in (True, False):  # "no" is truthy: not a verdict
            raise TypeError(f"leaks returned {type(verdict).__name__} {verdict!r:.40}, not True or False")
        return bool(verdict)
    except Exception as exc:
        logger.warning("leak check of task %s failed; treated as a leak: %r", task.name, exc)
        return True


def _screen(
    task: DualTask, response: str, chosen: Sequence[DualQuestion], options: DualOptions, controls: Iterable[str] = ()
) -> tuple[str | None, str | None, list[DualQuestion]]:
    """(answer, metric key of the reason it is not asked or None, duals that do not leak).

    Runs in a worker thread: extraction, guards and leak checks are task code, and math's may wait
    on math-verify's helper pool for seconds, which would stall every rollout on the event loop.
    """
    answer = task.extract_primal_answer(response)
    if answer is not None and not isinstance(answer, str):
        _warn_task_once(task, "answer", "extract_primal_answer of task %r returned %s, not text or None; counted "
                        "as no answer.", task.name, type(answer).__name__)
        return None, "dupo_no_answer", []
    if answer is None or not answer.strip():
        return answer, "dupo_no_answer", []
    if len(answer) > (options.max_answer_chars or task.max_answer_chars):
        return answer, "dupo_too_long", []
    marker = control_text_in(answer, controls)
    if marker is not None:  # it would rewrite the dual prompt's turns (dupo_verl.control_text)
        _warn_task_once(task, "control text", "an answer of task %r holds the chat control text %r; such answers "
                        "count as no answer (dupo_no_answer).", task.name, marker)
        return answer, "dupo_no_answer", []
    rejected = _rejection(task, answer, chosen)
    if rejected is not None:
        return answer, rejected, []
    return answer, None, [d for d in chosen if not leaks_safely(task, d, answer)]


async def _gold_score(task: DualTask, response: str, ground_truth: str | None, timeout_s: float) -> float | None:
    """`task.gold_score` in a worker thread, as a number in [0, 1], or None (no label, or no usable score)."""
    if not ground_truth:
        return None
    try:
        gold = await run_task_code(task.name, "gold_score", lambda: task.gold_score(response, ground_truth), timeout_s)
    except TaskCodeTimeout:  # counted in dupo_task_timeouts
        return None
    except Exception as exc:  # diagnostics (and the hybrid reward) must not cost the sample its dual reward
        logger.warning("gold_score of task %s failed; scored as unlabelled: %r", task.name, exc)
        return None
    if gold is None:
        return None
    if isinstance(gold, bool) or not isinstance(gold, numbers.Real) or not math.isfinite(gold):
        logger.warning("gold_score of task %s returned %r; scored as unlabelled", task.name, gold)
        return None
    return min(1.0, max(0.0, float(gold)))


async def score_response(
    task: DualTask,
    duals: Sequence[DualQuestion],
    response: str,
    generate: GenerateFn,
    options: DualOptions,
    session_id: str,
    ground_truth: str | None = None,
) -> DuPOReward:
    """DuPO reward of one primal response plus the fixed set of metrics in `METRIC_KEYS`.

    `generate` also serves `value_logprobs` (`ValueLogprobFn`) when `options.dual_mode` is likelihood.
    Task code runs off the event loop; the gold check runs alongside the dual pass.
    """
    require_dual_mode(task, options)
    metrics = dict.fromkeys(METRIC_KEYS, 0.0)
    chosen = list(duals[: options.dual_questions_per_rollout])
    controls = getattr(generate, "control_texts", ())  # the dual model's own, beside the common ones

    async def dual_accuracy() -> float | None:
        try:
            answer, rejected, usable = await run_task_code(
                task.name, "answer checks", lambda: _screen(task, response, chosen, options, controls),
                options.task_timeout_s)
        except TaskCodeTimeout:  # no verdict on this answer: the no-answer reward, counted in dupo_task_timeouts
            return None
        except Exception as exc:  # the task's extraction or guards raised: a failed sample, counted
            _warn_task_once(task, "screen", "answer extraction or guards of task %r raised %r; that sample counts "
                            "as a dual error with the no-answer reward.", task.name, exc)
            metrics["dupo_dual_errors"] = 1.0
            return None
        if rejected is not None:
            metrics[rejected] = 1.0
            return None
        assert answer is not None
        metrics["dupo_leaks"] = float(len(chosen) - len(usable))
        judgements = await asyncio.gather(
            *(judge_dual(task, d, answer, generate, options, f"{session_id}-dual{i}") for i, d in enumerate(usable))
        )
        metrics["dupo_dual_questions"] = float(len(judgements))
        metrics["dupo_dual_samples"] = float(sum(len(j.scores) for j in judgements))
        metrics["dupo_dual_missing"] = float(sum(j.missing for j in judgements))
        metrics["dupo_dual_tokens"] = float(sum(j.tokens for j in judgements))
        metrics["dupo_dual_errors"] = float(sum(j.errors for j in judgements))
        metrics["dupo_dual_timeouts"] = float(sum(j.timeouts for j in judgements))
        scored = [j for j in judgements if j.logprob is not None]
        if scored:
            metrics["dupo_dual_logprob"] = finite_mean([j.logprob for j in scored])  # type: ignore[misc]
            metrics["dupo_dual_logprob_sum"] = finite_mean([j.logprob_sum for j in scored])  # type: ignore[misc]
        if not judgements:
            return None
        return DUAL_AGGREGATES[options.dual_aggregate]([j.accuracy for j in judgements])

    # Answer checks without a verdict in time (math-verify overran its bound) score 0 in the task
    # (`MathTask.score_reconstruction`) and are counted here; the tally follows the work into threads.
    with verify_tally() as checks, task_code_tally() as task_code:
        dual_acc, gold = await asyncio.gather(
            dual_accuracy(), _gold_score(task, response, ground_truth, options.task_timeout_s))
    metrics["dupo_verify_timeouts"] = float(checks.timeouts)
    metrics["dupo_task_timeouts"] = float(task_code.timeouts)
    metrics["dupo_task_seconds"] = task_code.seconds
    return _final_reward(metrics, dual_acc, gold, options)


def _final_reward(metrics: dict[str, float], dual_acc: float | None, gold: float | None, options: DualOptions) -> DuPOReward:
    """Shaping, the gold-label mix and the reward metrics, from the aggregated dual accuracy."""
    reward = options.no_answer_reward if dual_acc is None else shape(dual_acc, options)
    metrics["dupo_dual_acc"] = dual_acc if dual_acc is not None else 0.0
    if gold is not None:
        metrics["dupo_has_gold"] = 1.0
        metrics["dupo_gold_acc"] = gold
        metrics["dupo_agrees_with_gold"] = float((reward >= 0.5) == (gold >= 0.5))
        if options.hybrid_weight > 0:
            reward = (1.0 - options.hybrid_weight) * reward + options.hybrid_weight * gold
    reward = min(1.0, max(0.0, float(reward)))  # rounding of the mix must not leave [0, 1]
    metrics["dupo_reward"] = reward
    return DuPOReward(reward=reward, metrics=metrics)


# Counts that add up over the two judges of an anchored reward (the rest come from the frozen one).
_ANCHOR_SUMMED = (
    "dupo_dual_questions",
    "dupo_dual_samples",
    "dupo_dual_tokens",
    "dupo_dual_errors",
    "dupo_dual_timeouts",
    "dupo_dual_missing",
    "dupo_verify_timeouts",
    "dupo_task_timeouts",
    "dupo_task_seconds",
)


def _scored_answers(metrics: Mapping[str, float]) -> float:
    """Dual answers a judge scored (at most one per question in likelihood mode)."""
    if float(metrics.get("dupo_dual_questions", 0.0)) <= 0:
        return 0.0
    return float(metrics.get("dupo_dual_samples", 0.0))


def anchored_reward(live: Mapping[str, float], frozen: DuPOReward, options: DualOptions) -> DuPOReward:
    """The anchored judge: the live self-dual's metrics (`live`, from `score_response` on the policy's
    servers) and the frozen judge's result on the same response, aggregated like an ensemble.

    Both judges see the same answer and questions, so a rejected answer (no answer, too long, all
    leaked) is rejected by both and keeps the frozen result. When only one judge reached a verdict
    (the other scored no dual answer: its calls all failed) it decides alone, and they do not disagree. `dupo_judge_disagreement` is 1.0 when the two
    verdicts fall on different sides of 0.5: label-free, the early warning that the live judge drifts.

    >>> opts = DualOptions(dual_aggregate="min")
    >>> one = {"dupo_dual_questions": 1.0, "dupo_dual_samples": 1.0}
    >>> frozen = DuPOReward(0.9, {**dict.fromkeys(METRIC_KEYS, 0.0), **one, "dupo_dual_acc": 0.9})
    >>> r = anchored_reward({**one, "dupo_dual_acc": 0.2}, frozen, opts)
    >>> (r.reward, r.metrics["dupo_judge_disagreement"], r.metrics["dupo_dual_questions"])
    (0.2, 1.0, 2.0)
    """
    metrics = {key: float(frozen.metrics.get(key, 0.0)) for key in METRIC_KEYS}
    for key in _ANCHOR_SUMMED:
        metrics[key] = float(live.get(key, 0.0)) + float(frozen.metrics.get(key, 0.0))
    # a judge reached a verdict when it scored at least one dual answer: one whose calls all failed
    # (a server down, timeouts) has questions but no scored answer, and is no verdict of 0
    live_has = _scored_answers(live) > 0
    frozen_has = _scored_answers(frozen.metrics) > 0
    if not (live_has or frozen_has):
        return DuPOReward(reward=frozen.reward, metrics=metrics)
    accs = ([float(live["dupo_dual_acc"])] if live_has else []) + (
        [float(frozen.metrics["dupo_dual_acc"])] if frozen_has else []
    )
    logprobs = [m for m, has in ((live, live_has), (frozen.metrics, frozen_has)) if has and options.dual_mode == "likelihood"]
    for key in ("dupo_dual_logprob", "dupo_dual_logprob_sum"):
        if logprobs:
            metrics[key] = finite_mean([float(m.get(key, 0.0)) for m in logprobs])
    metrics["dupo_judge_disagreement"] = float(len(accs) == 2 and (accs[0] >= 0.5) != (accs[1] >= 0.5))
    gold = metrics["dupo_gold_acc"] if metrics["dupo_has_gold"] > 0 else None
    return _final_reward(metrics, DUAL_AGGREGATES[options.dual_aggregate](accs), gold, options)
