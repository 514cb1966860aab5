"""verl's custom reward function for validation against gold labels (math accuracy, BLEU/chrF)."""

from __future__ import annotations

import decimal
import logging
import math
import numbers
from collections.abc import Mapping
from typing import Any

from reward_fns.comet import translation_comet
from reward_fns.extraction import extract_answer
from reward_fns.math import Verdict, judge_answers
from reward_fns.replies import strip_thinking, translation_text
from reward_fns.text import bleu, chrf, similarity

__all__ = ["compute_score", "gold_answers", "task_of"]

MATH_TASKS = ("math", "two_sum", "two_sum_inverse")
TRANSLATION_TASK = "translation"
SPAN_TASK = "span"
_MATH_SOURCES = ("gsm8k", "math", "aime", "amc")
_TRANSLATION_SOURCES = ("flores", "wmt", "translation")
_SPAN_SIMILARITY = {"question": "token_f1", "document": "rouge_l"}  # the span task's defaults
_warned: set[tuple[str, str]] = set()
logger = logging.getLogger(__name__)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one response against its gold label, with the same keys on every call of a task.

    math / two_sum / two_sum_inverse: ``{"score", "acc", "pred", "verify_timeouts", "gold_missing"}``
    (``pred`` is the extracted answer or ""). A symbolic check that gave no verdict in time
    (``Verdict.TIMEOUT``) is not a confirmed match, so it scores 0 unless another gold label matched,
    and it is counted in ``verify_timeouts`` (comparisons of this response without a verdict): a
    validation run then shows how many of its zeros are undecided rather than wrong.
    translation: ``{"score" (= chrF), "bleu", "chrf", "gold_missing"}`` scored in the target language
    from ``extra_info["dupo"]["tgt_lang"]`` or ``extra_info["tgt_lang"]``, on the translation the
    task's own reward reads (``reward_fns.replies.translation_text``), plus ``"comet"`` when the
    reward kwarg ``comet_model`` names a COMET model (``reward_fns.comet``).
    span: ``{"score", "acc", "gold_missing"}``, the task's similarity (token F1 for questions,
    ROUGE-L for documents, or ``extra_info["dupo"]["params"]["similarity"]``).
    any other task named in ``extra_info["dupo"]["task"]`` (a user's registered task):
    ``{"score", "acc", "gold_missing"}`` from the task's own ``gold_score``.
    Several references (a list or array label) score as the best of them.

    A row without a usable gold label (None, empty, NaN, not text or a number) scores 0 with
    ``gold_missing`` 1, and is logged once per data source: its zero is counted, not hidden in
    the accuracy, and one bad row does not stop a training run.

    >>> compute_score("openai/gsm8k", "3 + 4 = 7.\\n#### 7", "7")
    {'score': 1.0, 'acc': 1.0, 'pred': '7', 'verify_timeouts': 0.0, 'gold_missing': 0.0}
    """
    task = task_of(data_source, extra_info)
    if task in MATH_TASKS:
        pred = extract_answer(solution_str) if isinstance(solution_str, str) else None
        golds = [g for g in map(_boxed_or_text, gold_answers(ground_truth)) if g is not None]
        acc, timeouts = 0.0, 0
        for gold in golds:
            verdict = judge_answers(pred, gold)
            if verdict is Verdict.EQUAL:
                acc = 1.0
                break
            timeouts += verdict is Verdict.TIMEOUT
        missing = _missing(data_source, ground_truth, not golds)
        return {"score": acc, "acc": acc, "pred": pred or "", "verify_timeouts": float(timeouts), "gold_missing": missing}
    references = _text_references(ground_truth)  # several (a list column) score as the best of them
    missing = _missing(data_source, ground_truth, not references)
    params = _task_params(extra_info)
    if task not in (SPAN_TASK, TRANSLATION_TASK):
        value = _user_task_score(task, params, solution_str, references)
        return {"score": value, "acc": value, "gold_missing": missing}
    if task == SPAN_TASK:
        name = params.get("similarity") or _SPAN_SIMILARITY.get(str(params.get("mode", "question")), "token_f1")
        answer = strip_thinking(solution_str) if isinstance(solution_str, str) else ""
        value = max((similarity(str(name), answer, ref) for ref in references), default=0.0) if answer else 0.0
        return {"score": value, "acc": value, "gold_missing": missing}
    label = str(params.get("tgt_name") or "translation")
    hyp = translation_text(solution_str, label) if isinstance(solution_str, str) else ""
    lang = _target_language(extra_info)
    b = max((bleu(hyp, ref, lang) for ref in references), default=0.0)
    c = max((chrf(hyp, ref, lang) for ref in references), default=0.0)
    if kwargs.get("comet_model"):  # opt-in (reward kwarg): reward_fns/comet.py
        scores = [translation_comet(kwargs["comet_model"], hyp, ref, extra_info) for ref in references]
        return {"score": c, "bleu": b, "chrf": c, "comet": max(scores, default=0.0), "gold_missing": missing}
    return {"score": c, "bleu": b, "chrf": c, "gold_missing": missing}


def _user_task_score(task_name: str, params: Mapping[str, Any], response: Any, references: list[str]) -> float:
    """A registered user task's own `gold_score` (the best over the references), in [0, 1].

    The task is built as training builds it (`dupo_verl.tasks.get_task`; a `module:Class` task needs
    its module allowed, e.g. DUPO_TASK_MODULES); a task without a gold score is a ValueError naming it.
    """
    from dupo_verl.tasks import get_task  # the task registry; this package's own reward helpers need none

    try:
        task = get_task(task_name, **dict(params))
    except KeyError as exc:
        raise ValueError(f"compute_score has no gold-label scorer for task {task_name!r}: {exc.args[0]}") from None
    if not isinstance(response, str) or not references:
        return 0.0
    best = 0.0
    for reference in references:
        try:
            value = task.gold_score(response, reference)
        except Exception as exc:  # one bad row must not stop validation: it scores 0, logged once
            _warn_once((task_name, "raised"), "gold_score of task %r failed; scored 0: %r", task_name, exc)
            continue
        if value is None:
            raise ValueError(
                f"compute_score: task {task_name!r} has no gold_score (it returned None); give it one, or "
                "validate its rows through the DuPO agent loop"
            )
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
            _warn_once((task_name, "range"), "gold_score of task %r returned %.60r, not a number in [0, 1]; "
                       "scored 0", task_name, value)
            continue
        best = max(best, float(value))
    return best


def _warn_once(key: tuple[str, str], message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


def task_of(data_source: str, extra_info: Mapping[str, Any] | None = None) -> str:
    """``extra_info["dupo"]["task"]`` when set, else guessed from the data source name."""
    dupo = extra_info.get("dupo") if isinstance(extra_info, Mapping) else None
    if isinstance(dupo, Mapping) and dupo.get("task"):
        return str(dupo["task"])  # a built-in task, or a user task scored by its own gold_score
    source = str(data_source).lower()
    if "two_sum" in source or "twosum" in source:
        return "two_sum"
    if any(name in source for name in _MATH_SOURCES):
        return "math"
    if any(name in source for name in _TRANSLATION_SOURCES):
        return TRANSLATION_TASK
    raise ValueError(
        f"compute_score cannot tell the task of data_source {data_source!r}: name it with "
        f"{'/'.join(_MATH_SOURCES)} (math), {'/'.join(_TRANSLATION_SOURCES)} (translation) or two_sum, "
        f"or set extra_info['dupo']['task']"
    )


def gold_answers(ground_truth: Any) -> list[str]:
    """The usable gold answers of a row, as stripped text: a list (or numpy array, as parquet hands
    it back) gives one per usable element. Not an answer: None, blank text, bytes, a mapping, a
    boolean, or a non-finite number (pandas writes a missing answer as NaN, which `str` would turn
    into "nan", an answer `\\boxed{nan}` would then match)."""
    if hasattr(ground_truth, "tolist") and not isinstance(ground_truth, (str, bytes)):
        ground_truth = ground_truth.tolist()
    values = ground_truth if isinstance(ground_truth, (list, tuple)) else [ground_truth]
    answers = []
    for gold in values:
        if isinstance(gold, bool) or not isinstance(gold, (str, numbers.Real, decimal.Decimal)):
            continue
        try:
            if not isinstance(gold, str) and not math.isfinite(gold):
                continue
            text = str(gold).strip()
        except (ValueError, OverflowError):  # an integer past Python's 4300-digit str limit
            continue
        if text and text.lower() != "nan":
            answers.append(text)
    return answers


def _text_references(ground_truth: Any) -> list[str]:
    """The non-blank text references of a translation or span row (a number is no reference)."""
    if hasattr(ground_truth, "tolist") and not isinstance(ground_truth, (str, bytes)):
        ground_truth = ground_truth.tolist()
    values = ground_truth if isinstance(ground_truth, (list, tuple)) else [ground_truth]
    return [v for v in values if isinstance(v, str) and v.strip()]


def _boxed_or_text(text: str) -> str | None:
    if "\\boxed" in text or "\\fbox" in text or "####" in text:
        return extract_answer(text)
    return text


def _missing(data_source: str, ground_truth: Any, missing: bool) -> float:
    """1.0 for a row without a usable gold label, logged once per data source and kind of value."""
    if not missing:
        return 0.0
    key = (str(data_source)[:200], type(ground_truth).__name__)
    if key not in _warned:
        _warned.add(key)
        logger.warning(
            "compute_score: a row of data_source %r has no usable gold label (ground_truth %s); it scores 0 "
            "and is counted in gold_missing", key[0], _short_repr(ground_truth),
        )
    return 1.0


def _short_repr(value: Any) -> str:
    try:
        return repr(value)[:80]
    except ValueError:  # an integer past Python's 4300-digit str limit
        return f"<{type(value).__name__} too large to print>"


def _task_params(extra_info: Mapping[str, Any] | None) -> Mapping[str, Any]:
    dupo = extra_info.get("dupo") if isinstance(extra_info, Mapping) else None
    params = dupo.get("params") if isinstance(dupo, Mapping) else None
    return params if isinstance(params, Mapping) else {}


def _target_language(extra_info: Mapping[str, Any] | None) -> str | None:
    if not isinstance(extra_info, Mapping):
        return None
    dupo = extra_info.get("dupo")
    if isinstance(dupo, Mapping) and dupo.get("tgt_lang"):
        return str(dupo["tgt_lang"])
    lang = extra_info.get("tgt_lang")
    return str(lang) if lang else None
