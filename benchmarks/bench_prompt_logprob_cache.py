"""Would reading vLLM's prefix cache make likelihood duals cheaper, and are the log-probs still exact?

vLLM sets `skip_reading_prefix_cache` for every request that asks for `prompt_logprobs`, so each
likelihood dual prompt is prefilled whole (docs/results/judge_cost/README.md). This probe sends the
same batch of dual-like prompts (a prefix shared by the n rollouts of a group, a short answer tail,
then the hidden value's tokens) to one offline vLLM(-CPU) engine twice per round, with the cache read
and without, the cache reset before each pass, and prints per round the time ratio (cache / no
cache), the tokens served from the cache, how many prompts had a cached prefix reaching into the
value (those would read unfilled rows), and the largest log-prob difference on the others.

    .venv-e2e/bin/python benchmarks/bench_prompt_logprob_cache.py [--prefix 150] [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")

Prompt = tuple[list[int], list[int], list[int]]  # shared prefix, answer tail, value


def dual_like_prompts(rng: random.Random, vocab: int, prefix: int, problems: int = 64, n: int = 4,
                      questions: int = 2) -> list[Prompt]:
    """n rollouts per question share its prefix; each gives one of two answers (groups often agree)."""
    out = []
    for _ in range(problems):
        answers = [[rng.randrange(10, vocab) for _ in range(6)] for _ in range(2)]
        for _ in range(questions):
            shared = [rng.randrange(10, vocab) for _ in range(prefix)]
            value = [rng.randrange(10, vocab) for _ in range(3)]
            out += [(shared, rng.choice(answers), value) for _ in range(n)]
    return out


def score(llm, prompts: list[Prompt], read_cache: bool, end_id: int) -> tuple[float, list]:
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False,
                            skip_reading_prefix_cache=not read_cache)
    llm.reset_prefix_cache()
    start = time.perf_counter()
    outputs = llm.generate([{"prompt_token_ids": p + t + v + [end_id]} for p, t, v in prompts], params,
                           use_tqdm=False)
    wall = time.perf_counter() - start
    rows = []
    for (shared, tail, value), out in zip(prompts, outputs, strict=True):
        first = len(shared) + len(tail)
        logprobs = [out.prompt_logprobs[first + i][tok].logprob for i, tok in enumerate(value)]
        rows.append((logprobs, out.num_cached_tokens or 0, first))
    return wall, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=int, default=150, help="tokens shared by a group's dual prompts")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    from vllm import LLM

    from dupo_verl.demo.tiny_lm import build_tiny_lm

    model = build_tiny_lm(tempfile.mkdtemp(prefix="plc_") + "/model")
    llm = LLM(model=str(model), dtype="float32", max_model_len=1024, enable_prefix_caching=True,
              max_num_batched_tokens=2048, max_num_seqs=64, seed=0)
    vocab = min(250, llm.get_tokenizer().vocab_size)
    end_id = llm.get_tokenizer().convert_tokens_to_ids("<|im_end|>")
    rng = random.Random(0)
    ratios = []
    for round_ in range(args.rounds):
        prompts = dual_like_prompts(rng, vocab, args.prefix)
        order = (False, True) if round_ % 2 else (True, False)  # alternate which pass goes first
        timed = {mode: score(llm, prompts, mode, end_id) for mode in order}
        (t_cache, cached), (t_plain, plain) = timed[True], timed[False]
        unsafe = sum(c > first - 1 for _, c, first in cached)
        diff = max((abs(a - b) for (la, c, first), (lb, _, _) in zip(cached, plain, strict=True)
                    if c <= first - 1 for a, b in zip(la, lb, strict=True)), default=0.0)
        ratios.append(t_cache / t_plain)
        print(f"round {round_}: no cache {t_plain:.2f}s  cache {t_cache:.2f}s  ratio {ratios[-1]:.3f}  "
              f"cached tokens/prompt {statistics.fmean(c for _, c, _ in cached):.1f}  "
              f"prefix reaching the value {unsafe}/{len(prompts)}  max |dlogprob| {diff:.2e}", flush=True)
    print(f"cache_read_time_ratio={statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
