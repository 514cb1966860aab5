"""Token bookkeeping for likelihood duals: where the hidden value sits in one prefill.

A likelihood dual (`dual_mode=likelihood`) sends the chat-templated dual prompt, then the start of
the reply the prompt asks for (`DualReply.prefix`, e.g. math's `\\boxed{`), then the hidden value,
and reads the log-probability of each value token in one prefill. Every backend (verl's server
client, the reward-model router, OpenAI-compatible HTTP, vLLM offline, transformers) builds its
token ids here, so all of them score exactly the same tokens.

Why the tokens are built piece by piece: the prompt is tokenized by the chat template (ending with
the assistant header), the prefix and the value each on their own. The value's tokens then decode
to the value exactly, whatever merges a joint tokenization of `prefix + value` would make at the
boundary. The end-of-turn token is NOT scored, for every task: nothing after the value is sent
(a causal model's value log-probs never depend on later tokens), so the similarity measures the
value itself and not where the model would stop.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dupo_verl.control_text import tokenizer_control_texts
from dupo_verl.tasks import DualReply, Messages


@dataclass(frozen=True)
class ValueTokens:
    """Token ids of one prefill and the slice `[start:]` that holds the hidden value."""

    ids: list[int]
    start: int

    @property
    def value_ids(self) -> list[int]:
        return self.ids[self.start :]


def reply_token_ids(tokenizer: Any, prompt_ids: Sequence[int], reply: DualReply) -> ValueTokens:
    """`prompt_ids` + the reply's prefix tokens + the value's tokens (see the module docstring).

    The value is scored without surrounding whitespace (a model writes `\\boxed{5}`, not `\\boxed{ 5}`).
    A prefix that ends in whitespace (`"Answer: "`) gives that whitespace to the value when the
    tokenizer writes them as one token (`" determine"`, as the model would), not as a lone space
    token the model never writes. An empty value (nothing to score) is an error, not a perfect score,
    and so is one holding the tokenizer's control text (it would be scored as control tokens).
    """
    value = reply.value.strip()
    if not value:
        raise ValueError("the hidden value is empty: there is nothing to score in likelihood mode")
    marker = next((t for t in sorted(tokenizer_control_texts(tokenizer)) if t in value), None)
    if marker is not None:
        raise ValueError(f"the hidden value holds the tokenizer's control text {marker!r}; it cannot be scored as text")
    prefix = reply.prefix.rstrip()
    gap = reply.prefix[len(prefix) :]
    value_ids = tokenizer.encode(value, add_special_tokens=False)
    if not value_ids:
        raise ValueError(f"the hidden value {reply.value!r} tokenizes to no tokens")
    if gap:
        joined = tokenizer.encode(gap + value, add_special_tokens=False)
        if len(joined) <= len(value_ids) and tokenizer.decode(joined) == gap + value:
            value_ids = joined
        else:  # the tokenizer writes the gap on its own: it stays the prefix's
            prefix = reply.prefix
    prefix_ids = tokenizer.encode(prefix, add_special_tokens=False) if prefix else []
    ids = [int(t) for t in prompt_ids] + [int(t) for t in prefix_ids] + [int(t) for t in value_ids]
    return ValueTokens(ids=ids, start=len(ids) - len(value_ids))


def chat_prompt_ids(
    tokenizer: Any, messages: Messages, chat_template_kwargs: dict[str, Any] | None = None
) -> list[int]:
    """The chat-templated prompt (with the assistant header), tokenized without extra special tokens.

    The same text-then-encode path the transformers backend generates from.
    """
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **(chat_template_kwargs or {})
    )
    return list(tokenizer.encode(text, add_special_tokens=False))


def check_logprobs(logprobs: Sequence[float], expected: int, source: str) -> list[float]:
    """The value's log-probs as floats in [-inf, 0] exclusive of -inf.

    A wrong count, or a value that is NaN, infinite or positive beyond rounding, is a backend error
    (the caller counts it as a failed dual call): -inf would make the mean log-prob metric
    non-finite, and a positive one is no log-probability. Tiny positive rounding is clipped to 0.
    """
    if isinstance(logprobs, str | bytes | bytearray):  # iterable, but no list of numbers
        raise ValueError(f"{source} returned log-probs as {type(logprobs).__name__}, not a list of numbers")
    try:
        entries = list(logprobs)
    except TypeError as exc:
        raise ValueError(f"{source} returned non-numeric log-probs: {exc}") from None
    # False is 0.0 to float() and "-0.1" parses: neither is a log-prob a server sends (False would
    # score a perfect 1.0)
    odd = [v for v in entries if isinstance(v, bool) or not isinstance(v, numbers.Real)]
    if odd:
        raise ValueError(f"{source} returned non-numeric log-probs: {odd[0]!r:.40} ({type(odd[0]).__name__})")
    try:
        values = [float(v) for v in entries]
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"{source} returned non-numeric log-probs: {exc}") from None
    if len(values) != expected:
        raise ValueError(f"{source} returned {len(values)} value log-probs, expected {expected}")
    bad = [v for v in values if not math.isfinite(v) or v > 1e-4]
    if bad:
        raise ValueError(f"{source} returned unusable log-probs {bad[:3]} (NaN, infinite or positive)")
    return [min(0.0, v) for v in values]


def from_verl_prompt_logprobs(extra_fields: dict[str, Any], tokens: ValueTokens) -> list[float]:
    """The value's log-probs from a verl `TokenOutput.extra_fields` (sampling param `prompt_logprobs=0`).

    verl's vLLM server (`extract_prompt_logprobs`) stores `prompt_logprobs[j][0]` = log-prob of
    prompt token j+1 (the first token has none; a dummy row closes the list) and `prompt_ids[j][0]`
    = that token's id, which is checked against what was sent.
    """
    rows = extra_fields.get("prompt_logprobs")
    if rows is None:
        raise ValueError("the rollout server returned no prompt_logprobs (is it verl's vLLM/SGLang server?)")
    if len(rows) != len(tokens.ids):
        raise ValueError(f"prompt_logprobs has {len(rows)} rows for a prompt of {len(tokens.ids)} tokens")
    ids = extra_fields.get("prompt_ids")
    span = range(tokens.start - 1, len(tokens.ids) - 1)
    if ids is not None:
        got = [int(ids[j][0]) for j in span]
        if got != tokens.value_ids:
            raise ValueError(f"prompt_logprobs are for tokens {got}, expected the value's {tokens.value_ids}")
    return check_logprobs([rows[j][0] for j in span], len(tokens.value_ids), "the rollout server")


def from_token_logprob_dicts(entries: Sequence[Any], tokens: ValueTokens, source: str) -> list[float]:
    """The value's log-probs from vLLM's per-prompt-token dicts (`{token_id: Logprob}` offline, or
    `{"<token_id>": {"logprob": ...}}` in the OpenAI server's JSON), aligned with the prompt."""
    if entries is None or len(entries) != len(tokens.ids):
        raise ValueError(
            f"{source} returned {0 if entries is None else len(entries)} prompt log-probs "
            f"for {len(tokens.ids)} prompt tokens"
        )
    values = []
    for position, token in zip(range(tokens.start, len(tokens.ids)), tokens.value_ids, strict=True):
        entry = entries[position] or {}
        found = entry.get(token, entry.get(str(token)))
        if found is None:
            raise ValueError(f"{source} has no log-prob for value token {token} at position {position}")
        values.append(found["logprob"] if isinstance(found, dict) else found.logprob)
    return check_logprobs(values, len(tokens.value_ids), source)
