"""Chat-template control text inside untrusted answers.

The dual prompt carries the policy's answer. A chat template renders content as text and the
tokenizer then reads any special-token string in it (`<|im_end|>`, written with ordinary tokens) as
the control token itself, so an answer could close the user turn and write the dual's reply inside
the prompt. The scorer refuses such answers (counted as no answer). The strings come from the dual
model's tokenizer where one is at hand, plus the common chat formats' markers for servers whose
tokenizer is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

# ChatML (Qwen), Llama 3, Llama 2 / Mistral, Gemma, Phi and GPT-style end-of-text markers. Not `<s>` /
# `</s>` (also HTML's strike-through): a model that uses them names them in its own tokenizer.
COMMON_CONTROL_TEXTS: frozenset[str] = frozenset({
    "<|im_start|>", "<|im_end|>", "<|endoftext|>",
    "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    "[INST]", "[/INST]",
    "<start_of_turn>", "<end_of_turn>",
    "<|user|>", "<|assistant|>", "<|system|>", "<|end|>",
})


def tokenizer_control_texts(tokenizer: Any) -> frozenset[str]:
    """The special-token strings a (Hugging Face) tokenizer reads out of plain text, or none."""
    if tokenizer is None:
        return frozenset()
    try:
        return _cached_control_texts(tokenizer)
    except TypeError:  # an unhashable tokenizer
        return _control_texts(tokenizer)


@lru_cache(maxsize=16)  # built per rollout by the agent loop, from the same few tokenizers
def _cached_control_texts(tokenizer: Any) -> frozenset[str]:
    return _control_texts(tokenizer)


def _control_texts(tokenizer: Any) -> frozenset[str]:
    texts = set(getattr(tokenizer, "all_special_tokens", None) or ())
    for token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(token, "special", False):
            texts.add(str(token))
    return frozenset(t for t in texts if isinstance(t, str) and t.strip())


def control_text_in(text: str, extra: Iterable[str] = ()) -> str | None:
    """The first control string found in `text` (common markers and `extra`), or None."""
    for marker in (*COMMON_CONTROL_TEXTS, *extra):
        if marker in text:
            return marker
    return None
