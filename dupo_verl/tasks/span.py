"""A generic masked-span dual for question answering and summarization.

Question mode: hide a keyword of the question (every occurrence of it); the dual gets the masked
question and the primal answer and names the hidden word. Document mode: hide one sentence of the
document; the dual gets the masked document and the primal summary and writes the sentence back.
Reward: token F1 (question mode default) or ROUGE-L (document mode default) against the span.

Salience, without a tagger: a keyword is a content word (not a stop word, at least 3 letters),
preferring capitalised words inside a sentence (names), then longer words; a sentence is salient
when its content words recur in the rest of the document. Dual questions come most salient first,
so a cap keeps the best ones.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from dupo_verl.tasks.base import Decomposition, DualQuestion, DualTask, Messages
from dupo_verl.tasks.inputs import InputField
from dupo_verl.tasks.registry import register_task
from reward_fns.replies import strip_thinking
from reward_fns.text import similarity as text_similarity

MODES = ("question", "document")
SIMILARITIES = ("token_f1", "rouge_l")
PLACEHOLDERS = ("[BLANK]", "[MISSING]", "[HIDDEN]", "[GAP]")

STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just let me more most my myself no nor not now of off on once only or other our ours ourselves
    out over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours yourself yourselves many much every each per one two
    three four five six seven eight nine ten how many does did get got make made take took say said
    first second last next""".split()
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
# A keyword: letters only, not part of a longer token ("4-month-old", "Janet’s" are skipped).
_KEYWORD = re.compile(r"(?<![\w'’-])[^\W\d_]+(?![\w'’-])")
# Scripts written without spaces between words: a letter run there is a phrase or a whole sentence,
# not a keyword, and hiding it would leave the dual nothing known (such questions are skipped).
_UNSPACED = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")


def _content_words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if len(w) >= 3 and w.lower() not in STOP_WORDS]


_ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof st jr sr vs etc e.g i.e no fig inc ltd co gen gov sen rep u.s".split()
)


def _sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-empty sentence; "Dr. Ur" or "J. Smith" do not end one."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        last_word = text[start : m.start()].rsplit(None, 1)[-1:] or [""]
        stem = last_word[0].rstrip(".").lower()
        if (
            text[m.start() - 1 : m.start()] == "."
            and "\n" not in m.group(0)
            and (stem in _ABBREVIATIONS or len(stem) == 1)
        ):
            continue
        if text[start : m.start()].strip():
            spans.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def _placeholder(text: str) -> str | None:
    return next((p for p in PLACEHOLDERS if p not in text), None)


def _normalized(text: str) -> str:
    return " ".join(w.lower() for w in _WORD.findall(text))


@register_task("span")
class SpanTask(DualTask):
    """Params: `mode` (question | document), `similarity` (token_f1 | rouge_l)."""

    ability: str = "span"
    # Answers and summaries are free text, longer than a math final answer.
    max_answer_chars: int = 2048
    input_fields: ClassVar[dict[str, InputField]] = {
        "text": InputField("text"),
        "answer": InputField(None, required=False),
    }

    def __init__(self, mode: str = "question", similarity: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"span mode must be one of {MODES}, got {mode!r}")
        similarity = similarity or ("token_f1" if mode == "question" else "rouge_l")
        if similarity not in SIMILARITIES:
            raise ValueError(f"span similarity must be one of {SIMILARITIES}, got {similarity!r}")
        super().__init__(mode=mode, similarity=similarity)
        self.mode, self.similarity = mode, similarity

    # -- decomposition -------------------------------------------------------------------------
    def decompose(self, example: Mapping[str, Any], seed: int = 0) -> Decomposition:
        text = str(example.get("text") or "").strip()
        result = Decomposition()
        placeholder = _placeholder(text)
        if not text or placeholder is None:
            result.skipped["empty_text" if not text else "placeholder_in_text"] += 1
            return result
        if self.mode == "question":
            result.duals.extend(self._keyword_duals(text, placeholder))
            if not result.duals:
                result.skipped["no_keyword"] += 1
        else:
            spans = _sentences(text)
            if len(spans) < 2:
                result.skipped["too_few_sentences"] += 1
            else:
                result.duals.extend(self._sentence_duals(text, spans, placeholder))
        return result

    def _keyword_duals(self, text: str, placeholder: str) -> list[DualQuestion]:
        sentence_starts = {s for s, _ in _sentences(text)}
        best: dict[str, tuple[int, int, int]] = {}
        places: dict[str, list[tuple[int, int]]] = {}
        for m in _KEYWORD.finditer(text):
            word = m.group(0)
            key = word.lower()
            if len(word) < 3 or key in STOP_WORDS or _UNSPACED.search(word):
                continue
            places.setdefault(key, []).append(m.span())
            if key not in best:
                name_like = word[0].isupper() and m.start() not in sentence_starts
                best[key] = (int(name_like), len(word), -m.start())
        duals = []
        for key in sorted(best, key=best.get, reverse=True):
            spans = places[key]  # every occurrence is hidden, or the rest would give it away
            pieces, last = [], 0
            for start, end in spans:
                pieces += [text[last:start], placeholder]
                last = end
            masked = "".join(pieces) + text[last:]
            first = text[spans[0][0] : spans[0][1]]
            duals.append(DualQuestion(masked_text=masked, variable=placeholder, value=first))
        return duals

    def _sentence_duals(
        self, text: str, spans: list[tuple[int, int]], placeholder: str
    ) -> list[DualQuestion]:
        words = [_content_words(text[s:e]) for s, e in spans]
        total = Counter(w for ws in words for w in set(ws))
        scored = []
        for i, ((start, end), ws) in enumerate(zip(spans, words, strict=True)):
            if len(ws) < 2:
                continue
            centrality = sum(total[w] - 1 for w in set(ws)) / len(set(ws))
            scored.append((centrality, -i, start, end))
        scored.sort(reverse=True)
        return [
            DualQuestion(
                masked_text=text[:start] + placeholder + text[end:],
                variable=placeholder,
                value=text[start:end],
            )
            for _, _, start, end in scored
        ]

    def ground_truth(self, example: Mapping[str, Any]) -> str:
        return str(example.get("answer") or "")

    # -- prompts -------------------------------------------------------------------------------
    def primal_messages(self, example: Mapping[str, Any]) -> Messages:
        text = str(example["text"]).strip()
        if self.mode == "question":
            content = f"Answer the following question.\n\n{text}"
        else:
            content = f"Summarize the following document in a few sentences.\n\n{text}"
        return [{"role": "user", "content": content}]

    def extract_primal_answer(self, response: str) -> str | None:
        return strip_thinking(response) or None

    def dual_messages(self, dual: DualQuestion, primal_answer: str) -> Messages:
        var = dual.variable
        if self.mode == "question":
            content = (
                f"In the question below, a word was replaced by {var}.\n\nQuestion:\n{dual.masked_text}\n\n"
                f"An answer to the original question:\n{primal_answer}\n\n"
                f"Which word does {var} stand for? Reply with that word only."
            )
        else:
            content = (
                f"In the document below, one sentence was replaced by {var}.\n\nDocument:\n{dual.masked_text}\n\n"
                f"A summary of the original document:\n{primal_answer}\n\n"
                f"Write the sentence that {var} stands for. Reply with that sentence only."
            )
        return [{"role": "user", "content": content}]

    # -- scoring -------------------------------------------------------------------------------
    def score_reconstruction(self, dual: DualQuestion, dual_response: str) -> float:
        reply = strip_thinking(dual_response)
        if self.mode == "question":
            reply = reply.splitlines()[0] if reply else ""
        return text_similarity(self.similarity, reply, dual.value) if reply else 0.0

    def leaks(self, dual: DualQuestion, primal_answer: str) -> bool:
        """Document mode: a "summary" quoting the hidden sentence verbatim hands it to the dual. (In
        question mode an answer naming the keyword is what a good answer does, so never a leak.)"""
        if self.mode == "question":
            return False
        hidden = _normalized(dual.value)
        return bool(hidden) and isinstance(primal_answer, str) and hidden in _normalized(primal_answer)

    def gold_score(self, response: str, ground_truth: str) -> float | None:
        if not ground_truth:
            return None
        answer = self.extract_primal_answer(response)
        return text_similarity(self.similarity, answer, ground_truth) if answer else 0.0
