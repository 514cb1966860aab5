"""verl's custom reward function for validation against gold labels (math accuracy, BLEU/chrF)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reward_fns.comet import translation_comet
from reward_fns.extraction import extract_answer
from reward_fns.math import Verdict, judge_answers
from reward_fns.text import bleu, chrf

__all__ = ["compute_score", "task_of"]

MATH_TASKS = ("math", "two_sum")
TRANSLATION_TASK = "translation"
_MATH_SOURCES = ("gsm8k", "math", "aime", "amc")
_TRANSLATION_SOURCES = ("flores", "wmt", "translation")
_THINK_END = "</think>"


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one response against its gold label, with the same keys on every call of a task.

    math / two_sum: ``{"score", "acc", "pred", "verify_timeouts"}`` (``pred`` is the extracted
    answer or ""). A symbolic check that gave no verdict in time (``Verdict.TIMEOUT``) is not a
    confirmed match, so it scores 0 unless another gold label matched, and it is counted in
    ``verify_timeouts`` (comparisons of this response without a verdict): a validation run then
    shows how many of its zeros are undecided rather than wrong.
    translation: ``{"score" (= chrF), "bleu", "chrf"}`` scored in the target language from
    ``extra_info["dupo"]["tgt_lang"]`` or ``extra_info["tgt_lang"]``, plus ``"comet"`` when the
    reward kwarg ``comet_model`` names a COMET model (``reward_fns.comet``).

    >>> compute_score("openai/gsm8k", "3 + 4 = 7.\\n#### 7", "7")
    {'score': 1.0, 'acc': 1.0, 'pred': '7', 'verify_timeouts': 0.0}
    """
    task = task_of(data_source, extra_info)
    if task in MATH_TASKS:
        pred = extract_answer(solution_str) if isinstance(solution_str, str) else None
        golds = ground_truth if isinstance(ground_truth, (list, tuple)) else [ground_truth]
        acc, timeouts = 0.0, 0
        for gold in golds:
            verdict = judge_answers(pred, _gold_text(gold))
            if verdict is Verdict.EQUAL:
                acc = 1.0
                break
            timeouts += verdict is Verdict.TIMEOUT
        return {"score": acc, "acc": acc, "pred": pred or "", "verify_timeouts": float(timeouts)}
    hyp = solution_str.rsplit(_THINK_END, 1)[-1].strip() if isinstance(solution_str, str) else ""
    if not isinstance(ground_truth, str):
        raise ValueError(f"translation needs the reference text as ground_truth, got {type(ground_truth).__name__}")
    lang = _target_language(extra_info)
    b, c = bleu(hyp, ground_truth, lang), chrf(hyp, ground_truth, lang)
    if kwargs.get("comet_model"):  # opt-in (reward kwarg): reward_fns/comet.py
        comet = translation_comet(kwargs["comet_model"], hyp, ground_truth, extra_info)
        return {"score": c, "bleu": b, "chrf": c, "comet": comet}
    return {"score": c, "bleu": b, "chrf": c}


def task_of(data_source: str, extra_info: Mapping[str, Any] | None = None) -> str:
    """``extra_info["dupo"]["task"]`` when set, else guessed from the data source name."""
    dupo = extra_info.get("dupo") if isinstance(extra_info, Mapping) else None
    if isinstance(dupo, Mapping) and dupo.get("task"):
        task = str(dupo["task"])
        if task in MATH_TASKS or task == TRANSLATION_TASK:
            return task
        raise ValueError(
            f"compute_score has no gold-label scorer for task {task!r} (extra_info['dupo']['task']); "
            f"known: {', '.join((*MATH_TASKS, TRANSLATION_TASK))}"
        )
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


def _gold_text(gold: Any) -> str | None:
    if gold is None:
        return None
    text = str(gold)
    if "\\boxed" in text or "\\fbox" in text or "####" in text:
        return extract_answer(text)
    return text


def _target_language(extra_info: Mapping[str, Any] | None) -> str | None:
    if not isinstance(extra_info, Mapping):
        return None
    dupo = extra_info.get("dupo")
    if isinstance(dupo, Mapping) and dupo.get("tgt_lang"):
        return str(dupo["tgt_lang"])
    lang = extra_info.get("tgt_lang")
    return str(lang) if lang else None
