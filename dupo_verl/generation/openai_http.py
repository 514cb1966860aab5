"""Any OpenAI-compatible chat server (vLLM serve, SGLang, ...) over aiohttp.

Bounded concurrency, a timeout per request, retries with exponential backoff on transient
failures (connection errors, timeouts, 408/409/429/5xx, malformed replies). Other 4xx answers are
the caller's mistake and fail at once with the server's message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from dupo_verl.control_text import tokenizer_control_texts
from dupo_verl.generation.base import (
    BatchResult,
    GenerationBackend,
    GenerationError,
    GenerationRequest,
    ValueRequest,
)
from dupo_verl.likelihood import ValueTokens, chat_prompt_ids, from_token_logprob_dicts, reply_token_ids
from dupo_verl.scoring import Completion
from dupo_verl.tasks import DualReply, Messages

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class _Transient(Exception):
    """A failure worth retrying."""


class OpenAIBackend(GenerationBackend):
    """`POST {base_url}/chat/completions` with `n` samples per request."""

    name = "openai"
    max_batch_size = 256
    max_concurrent_batches = 64  # real concurrency is bounded by `max_concurrency` below

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        max_concurrency: int = 64,
        timeout_s: float = 600.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        tokenizer: str | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.extra_body = dict(extra_body or {})
        self.tokenizer_name = tokenizer  # likelihood duals tokenize here (default: `model`)
        self._tokenizer: Any = None
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        if chat_template_kwargs:
            self.extra_body["chat_template_kwargs"] = dict(chat_template_kwargs)
        self._session: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _ensure_session(self) -> None:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is not None and self._loop is loop and not self._session.closed:
            return
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        self._session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(limit=self.max_concurrency),
        )
        self._semaphore = asyncio.Semaphore(self.max_concurrency)
        self._loop = loop
        if self.model is None:
            self.model = await self._first_model()

    async def _first_model(self) -> str:
        async with self._session.get(f"{self.base_url}/models") as resp:
            body = await resp.text()
            if resp.status != 200:
                raise GenerationError(
                    f"GET {self.base_url}/models -> {resp.status}: {body[:300]}; pass --model"
                )
        try:
            return str(json.loads(body)["data"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise GenerationError(
                f"cannot read a model name from {self.base_url}/models; pass --model"
            ) from None

    async def agenerate(self, requests: Sequence[GenerationRequest]) -> BatchResult:
        await self._ensure_session()
        return list(await asyncio.gather(*(self._one(r) for r in requests), return_exceptions=True))

    async def _one(self, request: GenerationRequest) -> list[Completion]:
        import aiohttp

        payload: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "n": request.n,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            **self.extra_body,
        }
        if request.seed is not None:
            payload["seed"] = request.seed
        assert self._semaphore is not None
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
            try:
                async with self._semaphore:
                    return await self._post(payload, request.n)
            except (_Transient, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                last = exc
                logger.warning(
                    "chat request failed (attempt %d/%d): %r", attempt + 1, self.max_retries + 1, exc
                )
        raise GenerationError(f"chat request failed after {self.max_retries + 1} attempts: {last!r}")

    async def _post(self, payload: dict[str, Any], n: int) -> list[Completion]:
        async with self._session.post(f"{self.base_url}/chat/completions", json=payload) as resp:
            body = await resp.text()
            if resp.status in RETRY_STATUSES:
                raise _Transient(f"HTTP {resp.status}: {body[:300]}")
            if resp.status != 200:
                raise GenerationError(
                    f"HTTP {resp.status} from {self.base_url}/chat/completions: {body[:500]}"
                )
        return parse_chat_response(body, n)

    @property
    def control_texts(self) -> frozenset[str]:
        return tokenizer_control_texts(self._tokenizer)  # known once likelihood duals loaded it

    async def ascore_values(self, requests: Sequence[ValueRequest]) -> list[list[float] | BaseException]:
        """Likelihood duals: one `/completions` prefill per request (`prompt_logprobs=0`), retried like chat."""
        await self._ensure_session()
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            name = self.tokenizer_name or self.model
            self._tokenizer = await asyncio.to_thread(AutoTokenizer.from_pretrained, name)
        return list(await asyncio.gather(*(self._score_one(r) for r in requests), return_exceptions=True))

    async def _score_one(self, request: ValueRequest) -> list[float]:
        import aiohttp

        assert self._semaphore is not None
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))
            try:
                async with self._semaphore:
                    return await completion_value_logprobs(
                        self._session,
                        f"{self.base_url}/completions",
                        self.model,
                        self._tokenizer,
                        request.messages,
                        request.reply,
                        chat_template_kwargs=self.chat_template_kwargs,
                    )
            except (_Transient, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                last = exc
                logger.warning("prompt log-prob request failed (attempt %d): %r", attempt + 1, exc)
        raise GenerationError(f"prompt log-prob request failed after {self.max_retries + 1} attempts: {last!r}")

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def close(self) -> None:
        if self._session is not None and not self._session.closed and self._loop is not None:
            if not self._loop.is_closed() and not self._loop.is_running():
                self._loop.run_until_complete(self._session.close())
        self._session = None


def parse_chat_response(body: str, n: int) -> list[Completion]:
    """Completions from a chat-completions JSON body; a malformed body is retried (`_Transient`).

    Servers report tokens for the whole request only, so they are split evenly over the choices; a
    count that is not a non-negative whole number (Infinity, NaN, -100, 12.5) is unknown, as a missing
    one: it must neither discard good text nor enter the token totals.
    """
    try:
        data = json.loads(body)
        choices = sorted(data["choices"], key=lambda c: int(c.get("index", 0)))
        texts = [c["message"]["content"] or "" for c in choices]
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        raise _Transient(f"malformed chat completion ({exc!r}): {body[:300]}") from None
    if not all(isinstance(t, str) for t in texts):
        raise _Transient(f"non-text content in chat completion: {body[:300]}")
    if len(texts) != n:
        raise _Transient(f"asked for {n} choices, got {len(texts)}")
    usage = data.get("usage") or {}
    total = token_count(usage.get("completion_tokens") if isinstance(usage, dict) else None)
    share, extra = divmod(total, max(1, n))
    return [Completion(text=t, num_tokens=share + (1 if i < extra else 0)) for i, t in enumerate(texts)]


def token_count(value: Any) -> int:
    """A reported token count as a non-negative int; 0 (unknown, as when usage is missing) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return 0
    return int(value) if value >= 0 else 0


def prompt_logprob_payload(model: str | None, tokens: ValueTokens) -> dict[str, Any]:
    """A vLLM `/v1/completions` body that only prefills `tokens` and returns their log-probs."""
    payload: dict[str, Any] = {
        "prompt": tokens.ids,
        "max_tokens": 1,
        "temperature": 1.0,
        "prompt_logprobs": 0,
    }
    if model:
        payload["model"] = model
    return payload


def parse_prompt_logprobs(body: str, tokens: ValueTokens) -> list[float]:
    """The value's log-probs from a vLLM completions body: `choices[0].prompt_logprobs` is one entry
    per prompt token (None first), each `{"<token id>": {"logprob": ..., "rank": ...}}`."""
    try:
        entries = json.loads(body)["choices"][0]["prompt_logprobs"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise GenerationError(
            f"no prompt_logprobs in the completion ({exc!r}); the server must be vLLM's OpenAI server: {body[:300]}"
        ) from None
    return from_token_logprob_dicts(entries, tokens, "the completions server")


async def completion_value_logprobs(
    session: Any,
    url: str,
    model: str | None,
    tokenizer: Any,
    messages: Messages,
    reply: DualReply,
    *,
    chat_template_kwargs: Mapping[str, Any] | None = None,
) -> list[float]:
    """Log-probs of `reply.value` after the chat-templated `messages`: one prefill on an OpenAI-compatible
    vLLM server (`url` ends with `/completions`; the prompt is sent as token ids)."""
    loop = asyncio.get_running_loop()
    tokens = await loop.run_in_executor(
        None,
        lambda: reply_token_ids(
            tokenizer, chat_prompt_ids(tokenizer, messages, dict(chat_template_kwargs or {})), reply
        ),
    )
    async with session.post(url, json=prompt_logprob_payload(model, tokens)) as resp:
        body = await resp.text()
        if resp.status in RETRY_STATUSES:
            raise _Transient(f"HTTP {resp.status}: {body[:300]}")
        if resp.status != 200:
            raise GenerationError(f"HTTP {resp.status} from {url}: {body[:500]}")
    return parse_prompt_logprobs(body, tokens)
