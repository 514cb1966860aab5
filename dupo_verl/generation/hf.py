"""transformers backend: CPU runs, tests and small GPU jobs.

Requests are generated one at a time (all `n` samples of a request in one `generate` call) with
the request's own seed, so a request's output never depends on its batch neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from dupo_verl.generation.base import BatchResult, GenerationRequest, SyncBackend, ValueRequest, ValueResult
from dupo_verl.likelihood import ValueTokens, chat_prompt_ids, check_logprobs, reply_token_ids
from dupo_verl.scoring import Completion

logger = logging.getLogger(__name__)


class HFBackend(SyncBackend):
    """Chat generation with `transformers.AutoModelForCausalLM.generate`."""

    name = "hf"
    max_batch_size = 64

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        chat_template_kwargs: Mapping[str, Any] | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(
            model, dtype=torch_dtype, trust_remote_code=trust_remote_code
        ).to(device)
        self.model.eval()
        self.device = device
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> BatchResult:
        results: BatchResult = []
        for request in requests:
            try:
                results.append(self._generate_one(request))
            except Exception as exc:  # one bad request (e.g. too long) must not sink the batch
                logger.warning("hf generation failed: %r", exc)
                results.append(exc)
        return results

    def score_values(self, requests: Sequence[ValueRequest]) -> ValueResult:
        results: ValueResult = []
        for request in requests:
            try:
                tokens = reply_token_ids(
                    self.tokenizer,
                    chat_prompt_ids(self.tokenizer, request.messages, self.chat_template_kwargs),
                    request.reply,
                )
                results.append(self.token_logprobs(tokens))
            except Exception as exc:  # one bad request must not sink the batch
                logger.warning("hf value scoring failed: %r", exc)
                results.append(exc)
        return results

    def token_logprobs(self, tokens: ValueTokens) -> list[float]:
        """Log-probs of the value tokens `tokens.ids[tokens.start:]`: one forward pass."""
        torch = self._torch
        ids = torch.tensor([tokens.ids], device=self.device)
        with torch.inference_mode():
            logits = self.model(ids).logits[0, tokens.start - 1 : -1].float()
        logp = torch.log_softmax(logits, dim=-1)
        picked = logp.gather(1, torch.tensor(tokens.value_ids, device=self.device).unsqueeze(1)).squeeze(1)
        return check_logprobs(picked.tolist(), len(tokens.value_ids), "the hf backend")

    def _generate_one(self, request: GenerationRequest) -> list[Completion]:
        torch = self._torch
        text = self.tokenizer.apply_chat_template(
            request.messages, tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
        )
        input_ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(
            self.device
        )
        sample = request.temperature > 0
        # transformers refuses n > 1 for greedy decoding; greedy samples are identical anyway.
        copies = 1 if sample else request.n
        kwargs: dict[str, Any] = {
            "max_new_tokens": request.max_tokens,
            "num_return_sequences": request.n if sample else 1,
            "do_sample": sample,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
        }
        if sample:
            kwargs.update(temperature=request.temperature, top_p=request.top_p, top_k=0)
        if request.seed is not None:
            torch.manual_seed(request.seed)
        with torch.inference_mode():
            output = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
        new_tokens = output[:, input_ids.shape[1] :].tolist()
        return [self._completion(ids) for ids in new_tokens for _ in range(copies)]

    def _completion(self, ids: list[int]) -> Completion:
        length = len(ids)
        for i, token in enumerate(ids):
            if token in self.eos_ids:
                length = i + 1
                break
        text = self.tokenizer.decode(ids[:length], skip_special_tokens=True)
        return Completion(text=text, num_tokens=length)

    def close(self) -> None:
        self.model = None


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    ids = eos if isinstance(eos, list) else [eos]
    ids = [int(i) for i in ids if i is not None]
    if not ids:
        raise ValueError("the model has no eos token id; cannot tell where a completion ends")
    return ids
