"""Translation with back-translation as the dual (classic duality: nothing known, the whole source
sentence hidden).

Primal: translate the source from S to T. Dual: translate the primal output back from T to S; the
reward is the similarity (chrF by default, or BLEU / chrF++) between back-translation and source.
A parallel reference, when the input has one, is kept for evaluation only (`gold_score`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from dupo_verl.tasks.base import Decomposition, DualQuestion, DualTask, Messages
from dupo_verl.tasks.inputs import InputField
from dupo_verl.tasks.languages import language_name
from dupo_verl.tasks.registry import register_task
from reward_fns.text import chrf
from reward_fns.text import similarity as text_similarity

SIMILARITIES = ("chrf", "bleu", "chrf++")
# A "translation" this close (chrF) to the source is a copy: back-translating it is trivial.
COPY_THRESHOLD = 0.8

_THINK = re.compile(r"^.*</think>", re.S)
_QUOTES = {'"': '"', "'": "'", "“": "”", "«": "»", "「": "」", "`": "`"}


def clean_output(text: str, label: str) -> str:
    """The translation in a model reply: after any `</think>`, without a leading "Translation:" or
    "<language>:" label or quotes wrapped around the whole reply."""
    text = _THINK.sub("", text or "").strip()
    text = re.sub(rf"^(?:translation|{re.escape(label)})\s*[:：]\s*", "", text, flags=re.I).strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


def translation_prompt(text: str, src_name: str, tgt_name: str) -> str:
    return f"Translate the following {src_name} text into {tgt_name}. Reply with the {tgt_name} translation only.\n\n{text}"


@register_task("translation")
class TranslationTask(DualTask):
    """Params: `src_lang`, `tgt_lang` (FLORES codes), `similarity` (chrf | bleu | chrf++),
    `src_name` / `tgt_name` (readable names; looked up from the codes when not given)."""

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
    ) -> None:
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        src_name, tgt_name = language_name(src_lang, src_name), language_name(tgt_lang, tgt_name)
        super().__init__(
            src_lang=src_lang, tgt_lang=tgt_lang, similarity=similarity, src_name=src_name, tgt_name=tgt_name
        )
        self.src_lang, self.tgt_lang, self.similarity = src_lang, tgt_lang, similarity
        self.src_name, self.tgt_name = src_name, tgt_name
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
        """A "translation" that copies the source would earn a perfect back-translation."""
        if self.src_lang == self.tgt_lang:
            return False
        return chrf(primal_answer, dual.value) >= COPY_THRESHOLD

    def gold_score(self, response: str, ground_truth: str) -> float | None:
        if not ground_truth:
            return None
        answer = self.extract_primal_answer(response)
        return chrf(answer, ground_truth) if answer else 0.0
