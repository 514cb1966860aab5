"""Stand-ins for verl's generation servers, backed by a real tiny causal LM (no GPU, no vLLM).

`TinyLMServer.generate` has the signature and contract of verl's `LLMServerClient.generate`: token
ids in, `TokenOutput` (token ids, per-token log-probs) out, `max_tokens` resolved like verl's vLLM
server (explicit, else from prompt/response lengths; clamped to the context). Every call is
recorded so tests can check request ids and sampling parameters. Tests may script the text of
some replies (`reply_fn`) or plant failures (`fail_fn`); scripted text is still tokenized and
scored by the model, so log-probs stay real.

`serve_chat_completions` runs the same model behind an aiohttp `/v1/chat/completions` endpoint
(the OpenAI shape verl's reward-model router forwards), bound to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from verl.workers.rollout.replica import TokenOutput


@dataclass
class Call:
    """One generate request as the server saw it."""

    request_id: str
    prompt_ids: list[int]
    sampling_params: dict[str, Any]
    prompt_text: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    output_ids: list[int] = field(default_factory=list)


class TinyLM:
    """A tiny HF causal LM with serialized generation and teacher-forced log-probs.

    Work runs on the model's own single worker thread (`self.executor`), like a GPU engine with
    its own queue, so queued requests never tie up the event loop's default executor that verl
    uses for tokenizing and decoding.
    """

    def __init__(self, model_path: str | Path) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        self.model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=torch.float32).eval()
        self.eos_token_id = self.tokenizer.eos_token_id
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiny-lm")

    def generate(
        self,
        prompt_ids: list[int],
        *,
        max_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = -1,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        logprobs: bool = True,
    ) -> tuple[list[int], list[float] | None]:
        """Sample up to `max_tokens` tokens (greedy at temperature 0); stops after EOS.

        Log-probs cost a second forward pass, so like vLLM they are computed only when asked for.
        """
        with self._lock, torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            do_sample = temperature > 0
            sample_kwargs = (
                {"temperature": temperature, "top_p": top_p, "top_k": top_k if top_k and top_k > 0 else 0}
                if do_sample
                else {}
            )
            out = self.model.generate(
                torch.tensor([prompt_ids]),
                attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                max_new_tokens=max_tokens,
                do_sample=do_sample,
                repetition_penalty=repetition_penalty,
                eos_token_id=self.eos_token_id,
                pad_token_id=self.tokenizer.pad_token_id,
                **sample_kwargs,
            )
            token_ids = out[0, len(prompt_ids) :].tolist()
            if self.eos_token_id in token_ids:
                token_ids = token_ids[: token_ids.index(self.eos_token_id) + 1]
            return token_ids, self._logprobs(prompt_ids, token_ids) if logprobs else None

    def score(self, prompt_ids: list[int], token_ids: list[int]) -> list[float]:
        """Log-probs of given continuation tokens (for scripted replies)."""
        with self._lock, torch.no_grad():
            return self._logprobs(prompt_ids, token_ids)

    def prompt_logprobs(
        self, prompt_ids: list[int], k: int, temperature: float = 1.0
    ) -> tuple[list[dict[int, tuple[float, int]]], int]:
        """vLLM's `RequestOutput.prompt_logprobs` for positions 1.. (position 0 has none): per prompt
        token, `{token_id: (logprob, rank)}` holding that token and the top-`k` tokens; plus the one
        token sampled from the same forward pass (a prefill-only request costs one pass, as in vLLM)."""
        with self._lock, torch.no_grad():
            all_logits = self.model(torch.tensor([prompt_ids])).logits[0].float()
            last = all_logits[-1]
            if temperature > 0:
                next_token = int(torch.multinomial(torch.softmax(last / temperature, dim=-1), 1).item())
            else:
                next_token = int(last.argmax().item())
            logp = torch.log_softmax(all_logits[:-1], dim=-1)
        rows = []
        for position, token in enumerate(prompt_ids[1:]):
            row_logp = logp[position]
            value = float(row_logp[token])
            entry = {int(token): (value, int((row_logp > value).sum().item()) + 1)}
            if k > 0:
                top = torch.topk(row_logp, k)
                for rank, (lp, tid) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True)):
                    entry.setdefault(int(tid), (float(lp), rank + 1))
            rows.append(entry)
        return rows, next_token

    def _logprobs(self, prompt_ids: list[int], token_ids: list[int]) -> list[float]:
        if not token_ids:
            return []
        ids = torch.tensor([prompt_ids + token_ids])
        logits = self.model(ids).logits[0, len(prompt_ids) - 1 : -1]
        logp = torch.log_softmax(logits.float(), dim=-1)
        return logp.gather(1, torch.tensor(token_ids).unsqueeze(1)).squeeze(1).tolist()


class TinyLMServer:
    """`LLMServerClient.generate` served by `TinyLM` (see module docstring)."""

    def __init__(
        self,
        lm: TinyLM,
        *,
        prompt_length: int,
        response_length: int,
        max_model_len: int | None = None,
        reply_fn: Callable[[Call], str | None] | None = None,
        fail_fn: Callable[[Call], bool] | None = None,
        global_steps: int = 1,
    ) -> None:
        self.lm = lm
        self.prompt_length = prompt_length
        self.response_length = response_length
        self.max_model_len = max_model_len or prompt_length + response_length
        self.reply_fn = reply_fn
        self.fail_fn = fail_fn
        self.global_steps = global_steps
        self.calls: list[Call] = []

    async def generate(
        self,
        request_id: str,
        *,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: list[Any] | None = None,
        video_data: list[Any] | None = None,
        audio_data: list[Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TokenOutput:
        if image_data or video_data or audio_data:
            raise ValueError("TinyLMServer is text-only")
        params = dict(sampling_params)  # verl's server pops keys from its own copy too
        prompt_ids = [int(t) for t in prompt_ids]
        call = Call(
            request_id=request_id,
            prompt_ids=prompt_ids,
            sampling_params=dict(params),
            prompt_text=self.lm.tokenizer.decode(prompt_ids),
            kwargs=dict(kwargs),
        )
        self.calls.append(call)
        if self.fail_fn is not None and self.fail_fn(call):
            raise RuntimeError(f"planted server error for request {request_id}")

        room = self.max_model_len - len(prompt_ids)
        if room < 1:
            raise ValueError(
                f"prompt of {len(prompt_ids)} tokens leaves no room in max_model_len {self.max_model_len}"
            )
        if "max_tokens" in params:
            max_tokens = int(params.pop("max_tokens"))
        else:
            max_tokens = min(
                self.response_length, self.prompt_length + self.response_length - len(prompt_ids)
            )
        max_tokens = max(1, min(max_tokens, room))
        want_logprobs = bool(params.pop("logprobs", False))
        num_prompt_logprobs = params.pop("prompt_logprobs", None)

        loop = asyncio.get_running_loop()
        scripted = self.reply_fn(call) if self.reply_fn is not None else None
        prompt_rows = None
        if num_prompt_logprobs is not None and max_tokens == 1 and scripted is None and not want_logprobs:
            # a prefill-only request (likelihood duals, verl's teacher loop): one forward pass
            prompt_rows, next_token = await loop.run_in_executor(
                self.lm.executor,
                self.lm.prompt_logprobs,
                prompt_ids,
                int(num_prompt_logprobs),
                float(params.get("temperature", 1.0)),
            )
            token_ids, log_probs = [next_token], None
        elif scripted is not None:
            token_ids = self.lm.tokenizer.encode(scripted, add_special_tokens=False)[: max_tokens - 1]
            token_ids.append(self.lm.eos_token_id)
            log_probs = (
                await loop.run_in_executor(self.lm.executor, self.lm.score, prompt_ids, token_ids)
                if want_logprobs
                else None
            )
        else:
            token_ids, log_probs = await loop.run_in_executor(
                self.lm.executor,
                lambda: self.lm.generate(
                    prompt_ids,
                    max_tokens=max_tokens,
                    temperature=float(params.get("temperature", 1.0)),
                    top_p=float(params.get("top_p", 1.0)),
                    top_k=int(params.get("top_k", -1) or -1),
                    repetition_penalty=float(params.get("repetition_penalty", 1.0)),
                    seed=params.get("seed"),
                    logprobs=want_logprobs,
                ),
            )
        call.output_ids = list(token_ids)
        extra_fields = {"global_steps": self.global_steps}
        if num_prompt_logprobs is not None:
            if prompt_rows is None:
                prompt_rows, _ = await loop.run_in_executor(
                    self.lm.executor, self.lm.prompt_logprobs, prompt_ids, int(num_prompt_logprobs)
                )
            extra_fields.update(verl_prompt_logprobs(prompt_rows, prompt_ids, int(num_prompt_logprobs)))
        # what LLMServerClient.generate adds on top of the server's output
        extra_fields.setdefault("min_global_steps", self.global_steps)
        extra_fields.setdefault("max_global_steps", self.global_steps)
        return TokenOutput(
            token_ids=token_ids,
            log_probs=log_probs,
            stop_reason="completed",
            num_preempted=0,
            extra_fields=extra_fields,
        )


def verl_prompt_logprobs(
    rows: list[dict[int, tuple[float, int]]], prompt_ids: list[int], k: int
) -> dict[str, list[list[Any]]]:
    """`extra_fields` entries as verl's vLLM server fills them (`vllm_rollout.utils.extract_prompt_logprobs`):
    row j is token j+1 (k=0: that token; k>0: the top-k by rank), closed by a dummy row."""
    logprobs, ids = [], []
    for token, entry in zip(prompt_ids[1:], rows, strict=True):
        if k == 0:
            logprobs.append([entry[token][0]])
            ids.append([token])
        else:
            ranked = sorted((rank, tid, lp) for tid, (lp, rank) in entry.items() if rank <= k)
            ids.append([tid for _, tid, _ in ranked])
            logprobs.append([lp for _, _, lp in ranked])
    logprobs.append([0.0] * max(k, 1))
    ids.append([0] * max(k, 1))
    return {"prompt_ids": ids, "prompt_logprobs": logprobs}


async def completions_prompt_logprobs(lm: TinyLM, body: dict[str, Any], model_name: str) -> dict[str, Any]:
    """A vLLM OpenAI `/v1/completions` body for a token-id prompt with `prompt_logprobs` (`max_tokens` 1):
    `choices[0].prompt_logprobs` has one entry per prompt token, None first, each
    `{"<token id>": {"logprob", "rank", "decoded_token"}}`."""
    prompt = body.get("prompt")
    if not isinstance(prompt, list) or not all(isinstance(t, int) for t in prompt):
        raise ValueError("this stand-in takes token-id prompts only")
    k = body.get("prompt_logprobs")
    loop = asyncio.get_running_loop()
    rows = None
    if k is not None:
        rows, _ = await loop.run_in_executor(lm.executor, lm.prompt_logprobs, prompt, int(k))
    token_ids, _ = await loop.run_in_executor(
        lm.executor, lambda: lm.generate(prompt, max_tokens=int(body.get("max_tokens", 16)), logprobs=False)
    )
    entries = None
    if rows is not None:
        entries = [None] + [
            {
                str(tid): {"logprob": lp, "rank": rank, "decoded_token": lm.tokenizer.decode([tid])}
                for tid, (lp, rank) in entry.items()
            }
            for entry in rows
        ]
    return {
        "id": "cmpl-tiny",
        "object": "text_completion",
        "model": model_name,
        "choices": [
            {
                "index": 0,
                "text": lm.tokenizer.decode(token_ids, skip_special_tokens=True),
                "logprobs": None,
                "finish_reason": "length",
                "prompt_logprobs": entries,
            }
        ],
        "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(token_ids)},
    }


async def serve_chat_completions(
    lm: TinyLM,
    *,
    model_name: str,
    reply_fn: Callable[[list[dict[str, str]], dict[str, Any]], str | None] | None = None,
) -> tuple[Any, str, list[dict[str, Any]]]:
    """Start an aiohttp `/v1/chat/completions` server on 127.0.0.1; returns (runner, address, requests)."""
    from aiohttp import web

    requests: list[dict[str, Any]] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        requests.append(body)
        if body.get("model") not in (None, model_name):
            return web.json_response({"error": f"model {body.get('model')!r} not served"}, status=404)
        messages = body["messages"]
        prompt_ids = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(prompt_ids, "keys"):
            prompt_ids = prompt_ids["input_ids"]
        n = int(body.get("n", 1))
        max_tokens = int(body.get("max_tokens", 16))
        loop = asyncio.get_running_loop()
        choices, completion_tokens = [], 0
        for i in range(n):
            scripted = reply_fn(messages, body) if reply_fn is not None else None
            if scripted is not None:
                token_ids = lm.tokenizer.encode(scripted, add_special_tokens=False)[:max_tokens]
            else:
                token_ids, _ = await loop.run_in_executor(
                    lm.executor,
                    lambda: lm.generate(
                        list(prompt_ids),
                        max_tokens=max_tokens,
                        temperature=float(body.get("temperature", 1.0)),
                        top_p=float(body.get("top_p", 1.0)),
                        logprobs=False,
                    ),
                )
            completion_tokens += len(token_ids)
            text = lm.tokenizer.decode(token_ids, skip_special_tokens=True)
            choices.append(
                {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            )
        return web.json_response(
            {
                "id": f"chatcmpl-{len(requests)}",
                "object": "chat.completion",
                "model": model_name,
                "choices": choices,
                "usage": {"prompt_tokens": len(prompt_ids) * n, "completion_tokens": completion_tokens},
            }
        )

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        requests.append(body)
        if body.get("model") not in (None, model_name):
            return web.json_response({"error": f"model {body.get('model')!r} not served"}, status=404)
        return web.json_response(await completions_prompt_logprobs(lm, body, model_name))

    runner, address = await serve_routes({"/v1/chat/completions": chat, "/v1/completions": completions})
    return runner, address, requests


async def serve_routes(handlers: dict[str, Callable[..., Any]]) -> tuple[Any, str]:
    """An aiohttp server on 127.0.0.1 with these POST handlers; returns (runner, "host:port")."""
    from aiohttp import web

    app = web.Application()
    for path, handler in handlers.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # aiohttp exposes the bound port only here
    return runner, f"127.0.0.1:{port}"
