"""The two `GenerateFn`s the dual pass runs on inside verl.

`ServerGenerate`: the policy's own rollout servers through verl's `LLMServerClient` (token ids
in, `TokenOutput` out), used by the self-dual agent loop. `RouterGenerate`: a separate, frozen dual
model behind verl's reward-model router (OpenAI `/v1/chat/completions`), used by the reward manager.
Both also serve likelihood duals (`value_logprobs`, `dupo.dual_mode=likelihood`): one prefill that
returns the prompt's log-probs, through verl's `prompt_logprobs=0` sampling param (as verl's teacher
loop asks) or vLLM's `/v1/completions` with `prompt_logprobs` (the router forwards any path).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from dupo_verl.control_text import tokenizer_control_texts
from dupo_verl.generation.openai_http import completion_value_logprobs, token_count
from dupo_verl.likelihood import ValueTokens, from_verl_prompt_logprobs, reply_token_ids
from dupo_verl.scoring import Completion
from dupo_verl.tasks import DualReply, Messages

# One prefill reading the prompt's log-probs, as verl's own teacher loop asks for it: vLLM must
# still emit one token, which is ignored.
PROMPT_LOGPROB_PARAMS: dict[str, Any] = {
    "max_tokens": 1,
    "temperature": 1.0,
    "prompt_logprobs": 0,
    "detokenize": False,
}


class DualPromptTooLong(ValueError):
    """The dual prompt plus its token budget does not fit the model's context.

    Raised instead of truncating: verl would cut the left of the prompt (the question) silently.
    The scorer counts it as a dual error.
    """


class ServerGenerate:
    """K samples of one dual question as K concurrent calls to verl's rollout servers.

    Every sample carries the same sticky `request_id` (the dual question's session id), so verl's
    load balancer sends all K to one server and its prefix cache serves the shared prompt.
    `max_tokens` is always explicit: without it verl's server derives the budget from the primal
    prompt/response lengths.
    """

    def __init__(
        self,
        server_manager: Any,
        tokenizer: Any,
        build_prompt_ids: Callable[[Messages], Awaitable[list[int]]],
        context_limit: int,
        *,
        priority: int = 0,
        deterministic_seed: int | None = None,
    ) -> None:
        self.server_manager = server_manager
        self.control_texts = tokenizer_control_texts(tokenizer)  # refused in answers (dupo_verl.control_text)
        self.tokenizer = tokenizer
        self.build_prompt_ids = build_prompt_ids
        self.context_limit = context_limit
        self.priority = priority
        # Under verl's full_determinism every request gets the same seed, which would make the K
        # samples identical; give each sample its own seed (and id) instead.
        self.deterministic_seed = deterministic_seed
        # identical likelihood or greedy dual questions in flight at once to these servers, tokenized
        # alike, are asked once (dupo_verl.shared_calls)
        self.shared_scope = ("rollout servers", id(server_manager), id(tokenizer))

    async def __call__(
        self,
        messages: Messages,
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        session_id: str,
    ) -> list[Completion]:
        prompt_ids = await self.build_prompt_ids(messages)
        if len(prompt_ids) + max_tokens > self.context_limit:
            raise DualPromptTooLong(
                f"dual prompt of {len(prompt_ids)} tokens + max_tokens {max_tokens} exceeds the context "
                f"limit {self.context_limit} (rollout.max_model_len, else prompt_length + response_length)"
            )
        outputs = await asyncio.gather(
            *(self._one(prompt_ids, k, temperature, top_p, max_tokens, session_id) for k in range(n))
        )
        loop = asyncio.get_running_loop()
        texts = await loop.run_in_executor(
            None, lambda: [self.tokenizer.decode(o.token_ids, skip_special_tokens=True) for o in outputs]
        )
        return [Completion(text=t, num_tokens=len(o.token_ids)) for t, o in zip(texts, outputs, strict=True)]

    async def value_logprobs(self, messages: Messages, reply: DualReply, *, session_id: str) -> list[float]:
        """Log-probs of the hidden value's tokens: one `prompt_logprobs=0` prefill on the rollout servers."""
        prompt_ids = await self.build_prompt_ids(messages)
        loop = asyncio.get_running_loop()
        tokens: ValueTokens = await loop.run_in_executor(
            None, lambda: reply_token_ids(self.tokenizer, prompt_ids, reply)
        )
        if len(tokens.ids) + 1 > self.context_limit:
            raise DualPromptTooLong(
                f"dual prompt plus value of {len(tokens.ids)} tokens exceeds the context limit {self.context_limit}"
            )
        output = await self.server_manager.generate(
            request_id=session_id,
            prompt_ids=tokens.ids,
            sampling_params=dict(PROMPT_LOGPROB_PARAMS),
            priority=self.priority,
        )
        return from_verl_prompt_logprobs(output.extra_fields, tokens)

    async def _one(
        self,
        prompt_ids: list[int],
        k: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        session_id: str,
    ) -> Any:
        params: dict[str, Any] = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
        request_id = session_id
        if self.deterministic_seed is not None:
            params["seed"] = self.deterministic_seed + k
            request_id = f"{session_id}-s{k}"
        return await self.server_manager.generate(
            request_id=request_id,
            prompt_ids=list(prompt_ids),
            sampling_params=params,
            priority=self.priority,
        )


class RouterGenerate:
    """K samples of one dual question as one `n=K` chat completion to the reward-model router.

    verl's router balances by load only (no sticky sessions), so the K samples travel in one
    request: one server, one prompt, a shared prefix. `num_tokens` splits the response's
    `usage.completion_tokens` over the samples (only the sum is reported).
    """

    def __init__(
        self,
        address: str,
        session: Any,
        model: str | None = None,
        tokenizer: Any = None,
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.url = f"http://{address}/v1/chat/completions"
        self.completions_url = f"http://{address}/v1/completions"
        self.session = session  # an aiohttp.ClientSession owned by the caller
        self.model = model
        self.tokenizer = tokenizer  # the dual model's; needed for likelihood duals only
        self.control_texts = tokenizer_control_texts(tokenizer)  # refused in answers (dupo_verl.control_text)
        self.chat_template_kwargs = chat_template_kwargs
        # identical likelihood or greedy dual questions in flight at once to this model, tokenized
        # alike, are asked once (dupo_verl.shared_calls)
        self.shared_scope = ("router", self.completions_url, model, id(tokenizer),
                             json.dumps(chat_template_kwargs, sort_keys=True))

    async def value_logprobs(self, messages: Messages, reply: DualReply, *, session_id: str) -> list[float]:
        """Log-probs of the hidden value's tokens: one `/v1/completions` prefill with `prompt_logprobs=0`."""
        del session_id
        if self.tokenizer is None:
            raise ValueError("likelihood duals through the router need the dual model's tokenizer")
        return await completion_value_logprobs(
            self.session,
            self.completions_url,
            self.model,
            self.tokenizer,
            messages,
            reply,
            chat_template_kwargs=self.chat_template_kwargs,
        )

    async def __call__(
        self,
        messages: Messages,
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        session_id: str,
    ) -> list[Completion]:
        payload: dict[str, Any] = {
            "messages": messages,
            "n": n,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
        }
        if self.model:
            payload["model"] = self.model
        del session_id  # one n=K request already keeps the K samples together
        async with self.session.post(self.url, json=payload) as resp:
            if resp.status >= 400:
                body = (await resp.text())[:300]
                raise RuntimeError(f"dual model returned HTTP {resp.status} for {self.url}: {body}")
            data = await resp.json(content_type=None)
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != n:
            raise RuntimeError(f"dual model returned {len(choices)} choices, asked for {n}")
        texts = [str((c.get("message") or {}).get("content") or "") for c in choices]
        usage = data.get("usage")
        total = token_count(usage.get("completion_tokens") if isinstance(usage, dict) else None)
        counts = [total // n + (1 if i < total % n else 0) for i in range(n)]
        return [Completion(text=t, num_tokens=c) for t, c in zip(texts, counts, strict=True)]
