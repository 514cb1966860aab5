"""Any OpenAI-compatible chat server (vLLM serve, SGLang, ...) over aiohttp.

Bounded concurrency, a timeout per request, retries with exponential backoff on transient
failures (connection errors, timeouts, 408/409/429/5xx, malformed replies). Other 4xx answers are
the caller's mistake and fail at once with the server's message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

from dupo_verl.generation.base import BatchResult, GenerationBackend, GenerationError, GenerationRequest
from dupo_verl.scoring import Completion

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

    Servers report tokens for the whole request only, so they are split evenly over the choices.
    """
    try:
        data = json.loads(body)
        choices = sorted(data["choices"], key=lambda c: int(c.get("index", 0)))
        texts = [c["message"]["content"] or "" for c in choices]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _Transient(f"malformed chat completion ({exc!r}): {body[:300]}") from None
    if not all(isinstance(t, str) for t in texts):
        raise _Transient(f"non-text content in chat completion: {body[:300]}")
    if len(texts) != n:
        raise _Transient(f"asked for {n} choices, got {len(texts)}")
    usage = data.get("usage") or {}
    total = usage.get("completion_tokens") if isinstance(usage, dict) else None
    total = int(total) if isinstance(total, int | float) else 0
    share, extra = divmod(total, max(1, n))
    return [Completion(text=t, num_tokens=share + (1 if i < extra else 0)) for i, t in enumerate(texts)]
