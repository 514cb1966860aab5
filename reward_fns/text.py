"""Sentence-level text similarity on a 0..1 scale (BLEU, chrF, chrF++, ROUGE-L, token F1, exact match).

BLEU picks sacrebleu's tokenizer from the target language: ``zh`` for Chinese, MeCab for Japanese
and Korean (optional packages: ``pip install 'dupo-verl[cjk]'``), ``13a`` otherwise. A language
given by an English name ("Chinese (Simplified)") counts as its code, and a code with a script
subtag (``eng_Latn``, ``sr-Cyrl``) by its script. When the language is unknown or not given, the
reference's script decides: Han without kana is Chinese (``zh``), kana is
Japanese (``char``: per character, which needs no MeCab), anything else ``13a``; ``13a`` on an
unsegmented Chinese reference would make one "word" of the whole sentence and BLEU near zero. Inputs longer
than ``MAX_TEXT_CHARS`` are cut to that length so that a runaway generation cannot stall a step.

BLEU and chrF score the text as sacrebleu does, with no Unicode normalisation, so their numbers are
the published metrics' (a ligature ``ﬁ`` is not ``fi`` there). The token metrics (token F1, exact
match, ROUGE-L) normalise SQuAD-style, which here includes NFKC and case folding, so ``ﬁ`` is ``fi``
there. Invisible direction marks are dropped, and lone surrogates spelled out, for all of them.
"""

from __future__ import annotations

import re
import string
import threading
import unicodedata
from collections import Counter

from reward_fns.numbers import DIRECTION_MARKS

__all__ = [
    "SIMILARITIES",
    "MissingTokenizerError",
    "bleu",
    "chrf",
    "chrf_pp",
    "exact_match",
    "rouge_l",
    "similarity",
    "token_f1",
    "tokenizer_for",
]

MAX_TEXT_CHARS = 20_000
SIMILARITIES = ("bleu", "chrf", "chrf++", "rouge_l", "token_f1", "exact_match")

_MECAB_TOKENIZERS = {"ja-mecab": "ja", "ko-mecab": "ko"}
_LANG_TOKENIZER = {"zh": "zh", "zho": "zh", "cmn": "zh", "yue": "zh", "wuu": "zh", "ja": "ja-mecab",
                   "jpn": "ja-mecab", "ko": "ko-mecab", "kor": "ko-mecab", "chinese": "zh", "mandarin": "zh",
                   "cantonese": "zh", "japanese": "ja-mecab", "korean": "ko-mecab"}
_SCRIPT_SUBTAG = re.compile(r"[_\-]([A-Za-z]{4})(?:$|[_\-])")
_SCRIPT_TOKENIZER = {"hans": "zh", "hant": "zh", "hani": "zh", "jpan": "ja-mecab", "hira": "ja-mecab",
                     "kana": "ja-mecab", "hang": "ko-mecab", "kore": "ko-mecab"}
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile("[\u3040-\u30ff]")
# One token per Han/kana character (those scripts do not separate words); words elsewhere.
_CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK_CHARS}]|[^\W{_CJK_CHARS}]+")
_ARTICLES = frozenset({"a", "an", "the"})
_PUNCT = frozenset(string.punctuation)
_LOCAL = threading.local()
_NO_DIRECTION_MARKS = dict.fromkeys(map(ord, DIRECTION_MARKS))  # invisible: no characters to score


class MissingTokenizerError(ImportError):
    """sacrebleu's Japanese/Korean tokenizer needs MeCab packages that are not installed."""


def tokenizer_for(lang: str | None, reference: str | None = None) -> str:
    """sacrebleu tokenizer name for a FLORES (``zho_Hans``) or ISO (``zh``, ``ja-JP``) code or an
    English name; for an unknown or missing language, from the script of ``reference``.

    >>> tokenizer_for("zho_Hans"), tokenizer_for("ja"), tokenizer_for("eng_Latn"), tokenizer_for(None)
    ('zh', 'ja-mecab', '13a', '13a')
    >>> tokenizer_for("Chinese (Simplified)"), tokenizer_for("xx", "我们去")
    ('zh', 'zh')
    """
    if lang is not None and not isinstance(lang, str):
        raise TypeError(f"lang must be a language code string or None, got {type(lang).__name__}")
    if lang and lang.strip():
        base = re.split(r"[^a-z]", lang.strip().lower(), maxsplit=1)[0]
        if base in _LANG_TOKENIZER:
            return _LANG_TOKENIZER[base]
        script = _SCRIPT_SUBTAG.search(lang)
        if script:  # "eng_Latn", "sr-Cyrl": the code names its script
            return _SCRIPT_TOKENIZER.get(script.group(1).lower(), "13a")
    if isinstance(reference, str):
        sample = reference[:MAX_TEXT_CHARS]
        if _KANA.search(sample):
            return "char"
        if _HAN.search(sample):
            return "zh"
    return "13a"


def bleu(hyp: str, ref: str, lang: str | None = None) -> float:
    """Sentence BLEU (effective n-gram order, exponential smoothing) / 100.

    >>> bleu("the cat sat on the mat", "the cat sat on the mat")
    1.0
    """
    return _score(_bleu_metric(tokenizer_for(lang, ref)), hyp, ref)


def chrf(hyp: str, ref: str, lang: str | None = None) -> float:
    """Sentence chrF (character 6-grams, beta 2) / 100; characters need no tokenizer, so ``lang``
    is only validated."""
    tokenizer_for(lang)
    return _score(_chrf_metric(0), hyp, ref)


def chrf_pp(hyp: str, ref: str, lang: str | None = None) -> float:
    """Sentence chrF++ (chrF plus word 1-2-grams) / 100."""
    tokenizer_for(lang)
    return _score(_chrf_metric(2), hyp, ref)


def rouge_l(hyp: str, ref: str) -> float:
    """ROUGE-L F1 on lower-cased word tokens (one token per Han/kana character).

    >>> round(rouge_l("the cat sat", "the cat sat down"), 3)
    0.857
    """
    h, r = _tokens(_clip(hyp)), _tokens(_clip(ref))
    if not h or not r:
        return _both_empty_score(h, r, hyp, ref)
    lcs = lcs_length(h, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(h), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def token_f1(hyp: str, ref: str) -> float:
    """SQuAD-style bag-of-tokens F1 after normalization (case, punctuation, articles).

    >>> token_f1("The Eiffel Tower.", "eiffel tower")
    1.0
    """
    h, r = _normalized_tokens(hyp), _normalized_tokens(ref)
    if not h or not r:
        return _both_empty_score(h, r, hyp, ref)
    common = sum((Counter(h) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(h), common / len(r)
    return 2 * precision * recall / (precision + recall)


def exact_match(hyp: str, ref: str) -> float:
    """1.0 when the texts are equal after normalization (case, punctuation, articles, spaces)."""
    h, r = _normalized_tokens(hyp), _normalized_tokens(ref)
    return _both_empty_score(h, r, hyp, ref) if not h or not r else float(h == r)


def _both_empty_score(h: list[str], r: list[str], hyp: str, ref: str) -> float:
    """The score when a side has no tokens left after normalization: 0 unless both texts are the
    same text. Comparing the empty token lists made "the" equal "a" and "!!!" equal "???"."""
    if h or r:
        return 0.0
    return float(" ".join(_clip(hyp).casefold().split()) == " ".join(_clip(ref).casefold().split()))


def similarity(name: str, hyp: str, ref: str, lang: str | None = None) -> float:
    """Dispatch by name, one of ``SIMILARITIES``.

    >>> similarity("chrf++", "hello world", "hello world")
    1.0
    """
    if name == "bleu":
        return bleu(hyp, ref, lang)
    if name == "chrf":
        return chrf(hyp, ref, lang)
    if name == "chrf++":
        return chrf_pp(hyp, ref, lang)
    if name == "rouge_l":
        return rouge_l(hyp, ref)
    if name == "token_f1":
        return token_f1(hyp, ref)
    if name == "exact_match":
        return exact_match(hyp, ref)
    raise ValueError(f"unknown similarity {name!r}; choose one of {', '.join(SIMILARITIES)}")


def lcs_length(a: list[str], b: list[str]) -> int:
    """Longest common subsequence length, bit-parallel (Allison-Dix): O(len(b)) big-int steps."""
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def _bleu_metric(tokenizer: str):
    """One BLEU object per thread and tokenizer: building one loads MeCab's dictionary, and a
    MeCab tagger must not be shared between threads."""
    cache = _thread_metrics()
    key = ("bleu", tokenizer)
    if key not in cache:
        cache[key] = _build_bleu(tokenizer)
    return cache[key]


def _build_bleu(tokenizer: str):
    from sacrebleu.metrics import BLEU

    try:
        return BLEU(tokenize=tokenizer, effective_order=True)
    except (ImportError, RuntimeError) as err:
        if tokenizer in _MECAB_TOKENIZERS:
            raise MissingTokenizerError(
                f"BLEU for {_MECAB_TOKENIZERS[tokenizer]!r} targets needs sacrebleu's MeCab tokenizer "
                f"({tokenizer}), which is not installed: pip install 'dupo-verl[cjk]' "
                f"(that is sacrebleu[ja,ko])"
            ) from err
        raise


def _chrf_metric(word_order: int):
    from sacrebleu.metrics import CHRF

    cache = _thread_metrics()
    key = ("chrf", word_order)
    if key not in cache:
        cache[key] = CHRF(word_order=word_order)
    return cache[key]


def _thread_metrics() -> dict:
    if not hasattr(_LOCAL, "metrics"):
        _LOCAL.metrics = {}
    return _LOCAL.metrics


def _score(metric, hyp: str, ref: str) -> float:
    score = metric.sentence_score(_clip(hyp), [_clip(ref)]).score / 100.0
    return min(1.0, max(0.0, score))


def _clip(text: str) -> str:
    """At most MAX_TEXT_CHARS of valid UTF-8 without NULs (MeCab's C API rejects both)."""
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    text = text[:MAX_TEXT_CHARS].replace("\x00", " ").translate(_NO_DIRECTION_MARKS)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: spelled out, so two different ones stay different
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def _normalized_tokens(text: str) -> list[str]:
    text = "".join(" " if c in _PUNCT else c for c in unicodedata.normalize("NFKC", _clip(text)).casefold())
    return [t for t in _TOKEN.findall(text) if t not in _ARTICLES]
