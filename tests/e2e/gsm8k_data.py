"""A small GSM8K parquet in verl's RLHFDataset schema, for the baseline (non-DuPO) run.

Written here rather than with `dupo-verl prepare` so the baseline test depends only on verl, and
so the row schema verl expects (as its examples/data_preprocess/gsm8k.py writes it) is pinned down
independently of our own data preparation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

INSTRUCTION = 'Let\'s think step by step and output the final answer after "####".'
DATA_SOURCE = "openai/gsm8k"


def gsm8k_rows(src: Path, limit: int, tokenizer=None, max_prompt_tokens: int | None = None) -> list[dict]:
    """The first `limit` rows of `src` (shared GSM8K JSONL) whose chat prompt fits the limit.

    Raises ValueError naming the line when a row lacks `problem` or `answer`.
    """
    rows: list[dict] = []
    with open(src, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if len(rows) >= limit:
                break
            record = json.loads(line)
            for key in ("problem", "answer"):
                if not isinstance(record.get(key), str) or not record[key].strip():
                    raise ValueError(f"{src}:{lineno}: field {key!r} missing or empty")
            prompt = [{"role": "user", "content": f"{record['problem']} {INSTRUCTION}"}]
            if tokenizer is not None and max_prompt_tokens is not None:
                ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
                if hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding
                    ids = ids["input_ids"]
                if len(ids) > max_prompt_tokens:
                    continue
            rows.append(
                {
                    "data_source": DATA_SOURCE,
                    "prompt": prompt,
                    "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": record["answer"].strip()},
                    "extra_info": {"split": "test", "index": lineno - 1, "id": record.get("id", "")},
                }
            )
    if len(rows) < limit:
        raise ValueError(f"{src}: only {len(rows)} rows fit {max_prompt_tokens} prompt tokens, {limit} needed")
    return rows


def write_gsm8k_parquet(src: Path, out: Path, limit: int, tokenizer=None, max_prompt_tokens: int | None = None) -> Path:
    """Write `gsm8k_rows(...)` to `out` (parquet) and return it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(gsm8k_rows(src, limit, tokenizer, max_prompt_tokens)).to_parquet(out, index=False)
    return out
