"""What counts as the answer in a model's reply, shared by training rewards and validation scores.

The translation and span tasks reward the answer these functions cut out of a reply, and
`compute_score` validates the same cut, so a reply's training reward and its validation score
measure the same text.
"""

from __future__ import annotations

import re

__all__ = ["strip_thinking", "translation_text"]

_THINK = re.compile(r"^.*</think>", re.S)
_QUOTES = {'"': '"', "'": "'", "“": "”", "«": "»", "「": "」", "`": "`"}


def strip_thinking(text: str) -> str:
    """The reply after its last `</think>`, stripped (the whole reply when it has none)."""
    return _THINK.sub("", text).strip() if isinstance(text, str) else ""


def translation_text(text: str, label: str) -> str:
    """The translation in a reply: after any `</think>`, without a leading "Translation:" or
    "<label>:" (the language's name) or quotes wrapped around the whole reply."""
    text = strip_thinking(text)
    text = re.sub(rf"^(?:translation|{re.escape(label)})\s*[:：]\s*", "", text, flags=re.I).strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text
