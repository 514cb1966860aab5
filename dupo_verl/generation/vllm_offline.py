"""vLLM offline backend (`vllm.LLM`): the GPU workhorse for filter and rerank.

vLLM is imported only when this backend is built, so the rest of dupo-verl runs without it. One
`LLM.chat` call takes the whole micro-batch with a `SamplingParams` per request (own n, length,
temperature and seed), and vLLM's scheduler does the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dupo_verl.control_text import tokenizer_control_texts
from dupo_verl.generation.base import BatchResult, GenerationRequest, SyncBackend, ValueRequest, ValueResult
from dupo_verl.likelihood import chat_prompt_ids, from_token_logprob_dicts, reply_token_ids
from dupo_verl.scoring import Completion


class VLLMBackend(SyncBackend):
    """Chat generation with `vllm.LLM.chat` (per-request seeds)."""

    name = "vllm"
    max_batch_size = 4096

    def __init__(
        self,
        model: str,
        *,
        seed: int = 0,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        chat_template_kwargs: Mapping[str, Any] | None = None,
        llm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the vllm backend needs vLLM: pip install 'dupo-verl[gpu]' (or use --backend openai|hf)"
            ) from exc
        self._sampling_params = SamplingParams
        kwargs: dict[str, Any] = {
            "model": model,
            "seed": seed,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "dtype": dtype,
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        kwargs.update(llm_kwargs or {})
        self.llm = LLM(**kwargs)
        self.chat_template_kwargs = dict(chat_template_kwargs or {})

    def generate(self, requests: Sequence[GenerationRequest]) -> BatchResult:
        if not requests:
            return []
        params = [
            self._sampling_params(
                n=r.n,
                temperature=r.temperature,
                top_p=r.top_p,
                max_tokens=r.max_tokens,
                seed=r.seed,
            )
            for r in requests
        ]
        outputs = self.llm.chat(
            [r.messages for r in requests],
            sampling_params=params,
            use_tqdm=False,
            chat_template_kwargs=self.chat_template_kwargs or None,
        )
        return [
            [Completion(text=o.text, num_tokens=len(o.token_ids)) for o in output.outputs]
            for output in outputs
        ]

    @property
    def control_texts(self) -> frozenset[str]:
        return tokenizer_control_texts(self.llm.get_tokenizer())

    def score_values(self, requests: Sequence[ValueRequest]) -> ValueResult:
        """Likelihood duals: one `generate` over token-id prompts with `prompt_logprobs=0`, `max_tokens=1`."""
        if not requests:
            return []
        tokenizer = self.llm.get_tokenizer()
        results: ValueResult = [None] * len(requests)  # type: ignore[list-item]
        prompts, tokens_of, slots = [], [], []
        for i, request in enumerate(requests):
            try:
                prompt = chat_prompt_ids(tokenizer, request.messages, self.chat_template_kwargs)
                tokens = reply_token_ids(tokenizer, prompt, request.reply)
            except Exception as exc:  # one bad request must not sink the batch
                results[i] = exc
                continue
            prompts.append({"prompt_token_ids": tokens.ids})
            tokens_of.append(tokens)
            slots.append(i)
        if prompts:
            params = self._sampling_params(max_tokens=1, temperature=1.0, prompt_logprobs=0, detokenize=False)
            outputs = self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
            for i, tokens, output in zip(slots, tokens_of, outputs, strict=True):
                try:
                    results[i] = from_token_logprob_dicts(output.prompt_logprobs, tokens, "vllm")
                except Exception as exc:
                    results[i] = exc
        return results

    def close(self) -> None:
        self.llm = None
