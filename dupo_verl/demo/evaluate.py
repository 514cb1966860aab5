"""Greedy held-out accuracy of a causal LM on primal or dual examples (transformers `generate`).

The same chat template and `add_generation_prompt=True` verl uses to build rollout prompts, so the
model is judged on the exact token sequences it is trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dupo_verl.demo.examples import Example, score
from dupo_verl.tasks import DualTask


@dataclass
class Accuracy:
    """Accuracy over `n` examples, with a few replies kept for the report."""

    correct: int
    n: int
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else 0.0


def prompt_ids(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[int]:
    """Chat-template token ids with the assistant header, as verl's agent loops build them."""
    ids = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):  # transformers >= 5 may return a BatchEncoding
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def generate_greedy(
    model: Any, tokenizer: Any, prompts: Sequence[list[int]], max_new_tokens: int, batch_size: int = 256
) -> list[str]:
    """Greedy replies (special tokens stripped) to token-id prompts, left-padded in batches."""
    import torch

    pad = tokenizer.pad_token_id
    replies: list[str] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                chunk = prompts[start : start + batch_size]
                width = max(len(p) for p in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for i, p in enumerate(chunk):
                    ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
                    mask[i, width - len(p) :] = 1
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=pad,
                    eos_token_id=tokenizer.eos_token_id,
                )
                replies += tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    finally:
        model.train(was_training)
    return replies


def accuracy(
    model: Any,
    tokenizer: Any,
    task: DualTask,
    examples: Sequence[Example],
    max_new_tokens: int = 8,
    keep_samples: int = 5,
    batch_size: int = 256,
) -> Accuracy:
    """Greedy accuracy of `model` on `examples` (scored by the task's own rules)."""
    if not examples:
        return Accuracy(0, 0)
    prompts = [prompt_ids(tokenizer, ex.messages) for ex in examples]
    replies = generate_greedy(model, tokenizer, prompts, max_new_tokens, batch_size)
    correct = 0
    samples = []
    for ex, reply in zip(examples, replies, strict=True):
        ok = score(task, ex, reply) >= 0.5
        correct += ok
        if len(samples) < keep_samples:
            samples.append({"prompt": ex.messages[-1]["content"], "reply": reply, "target": ex.target, "ok": ok})
    return Accuracy(correct, len(examples), samples)


def load_model(path: str, threads: int | None = None) -> tuple[Any, Any]:
    """A saved model and tokenizer in float32 on CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, tokenizer
