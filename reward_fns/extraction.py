"""Pull the final answer out of a model response, in linear time on bounded input."""

from __future__ import annotations

import re

from reward_fns.numbers import NUMBER_SPACES, ascii_number_forms

MAX_RESPONSE_CHARS = 200_000  # only the tail is read: the final answer sits at the end
MAX_ANSWER_CHARS = 1_000  # an "answer" longer than this is not an answer
_BRACE_BUDGET = 200_000  # brace tokens visited while matching \boxed{...} candidates
_MAX_BOX_CANDIDATES = 50

_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*(\{)?")
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.S)
_GSM8K = re.compile(r"####[ \t]*([^\n]*)")
_ANSWER_IS = re.compile(r"(?:final\s+answer|\banswer)\s*(?:is|:|=)[ \t:]*", re.I)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")
# A number in running text: "1,200", "3.5", ".25" (a leading dot, but not the ".5" of "1.2.5"),
# "1e3", "3/4", "50%". A whole number just before a proper fraction is taken with it ("2 1/2").
_LAST_NUMBER = re.compile(
    r"-?(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|(?<![0-9.])\.[0-9]+)"
    r"(?:[eE][+-]?[0-9]{1,6}(?![0-9A-Za-z]))?"
    r"(?:\s*/\s*[0-9]+)?%?"
)
_SIMPLE_FRACTION = re.compile(r"([0-9]{1,30})\s*/\s*([0-9]{1,30})%?")
_MIXED_WHOLE = re.compile(rf"(?<![0-9.,/])(-?[0-9]+)[{NUMBER_SPACES}]$")
_THINK_END = "</think>"


def extract_answer(text: str) -> str | None:
    """The final answer of a response, or None when it states none.

    Order: the last complete ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces fine), GSM8K's
    ``#### n``, the last "the answer is ...", then the last number in the text. A last box longer
    than ``MAX_ANSWER_CHARS`` is the response's answer too, an unusable one: None, never a number
    read out of it or an earlier box. Only the last ``MAX_RESPONSE_CHARS`` characters are read, so
    any input returns quickly.

    >>> extract_answer("so $x = \\\\boxed{\\\\frac{3}{4}}$.")
    '\\\\frac{3}{4}'
    >>> extract_answer("She pays 3 * 4 = 12 dollars.\\n#### 12")
    '12'
    """
    if not isinstance(text, str) or not text:
        return None
    text = text[-MAX_RESPONSE_CHARS:]
    try:
        for finder in (_last_box, _gsm8k, _answer_is, _last_number):
            answer = finder(text)
            if answer:
                return answer
    except _OverlongBox:
        return None
    return None


class _OverlongBox(Exception):
    """The last complete box holds more than an answer: the response has no usable one."""


def _last_box(text: str) -> str | None:
    starts = [m for m in _BOX_START.finditer(text)][-_MAX_BOX_CANDIDATES:]
    budget = [_BRACE_BUDGET]
    for m in reversed(starts):
        if m.group(1) is None:  # "\boxed 5": TeX's one-token argument
            token = re.match(r"[^\s$]+", text[m.end() :])
            content = token.group(0) if token else ""
        else:
            content = _braced(text, m.end(), budget)
            if content is None:
                if budget[0] <= 0:
                    return None
                continue
        content = _peel_boxes(content, budget) or ""
        if len(content.strip()) > MAX_ANSWER_CHARS:
            raise _OverlongBox
        content = _trim(content)
        if content:
            return content
    return None


def _peel_boxes(content: str, budget: list[int]) -> str:
    """``\\boxed{\\boxed{x}}`` -> ``x`` (a few layers; deeper nesting is left as is)."""
    for _ in range(8):
        content = content.strip()
        m = _BOX_START.match(content)
        if m is None or m.group(1) is None:
            break
        inner = _braced(content, m.end(), budget)
        if inner is None or m.end() + len(inner) + 1 != len(content):
            break
        content = inner
    return content


def _braced(text: str, start: int, budget: list[int]) -> str | None:
    """Text from ``start`` (just past an opening brace) to its matching close brace, or None."""
    depth = 1
    for tok in _BRACE_TOKEN.finditer(text, start):
        budget[0] -= 1
        if budget[0] <= 0:
            return None
        t = tok.group(0)
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
            if depth == 0:
                return text[start : tok.start()]
    return None


def _gsm8k(text: str) -> str | None:
    hits = list(_GSM8K.finditer(text))
    return _trim(hits[-1].group(1)) if hits else None


def _answer_is(text: str) -> str | None:
    hits = list(_ANSWER_IS.finditer(text))
    if not hits:
        return None
    rest = text[hits[-1].end() : hits[-1].end() + 4 * MAX_ANSWER_CHARS]
    end = _SENTENCE_END.search(rest)
    return _trim(rest[: end.start()] if end else rest)


def _last_number(text: str) -> str | None:
    """The last number in the text, any script's digits read as ASCII (``reward_fns.numbers``)."""
    text = ascii_number_forms(text)
    tail = text.rsplit(_THINK_END, 1)[-1]
    if not _LAST_NUMBER.search(tail):
        tail = text
    hits = list(_LAST_NUMBER.finditer(tail))
    if not hits:
        return None
    number = hits[-1].group(0)
    fraction = _SIMPLE_FRACTION.fullmatch(number)  # at most 30 digits a side: int() of 5000 digits raises
    if fraction and 0 < int(fraction.group(1)) < int(fraction.group(2)):
        whole = _MIXED_WHOLE.search(tail, max(0, hits[-1].start() - 30), hits[-1].start())
        if whole:
            number = f"{whole.group(1)} {number}"
    return _trim(number)


def _trim(answer: str) -> str | None:
    answer = answer.strip().strip("*").strip()
    if answer.startswith("$") and answer.endswith("$") and len(answer) > 1:
        answer = answer.strip("$").strip()
    answer = answer.rstrip(".").strip()
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        return None
    return answer
