"""The transformers backend with the real tiny model, alone and behind the micro-batcher."""

from __future__ import annotations

import asyncio

import pytest

from dupo_verl.generation import GenerationRequest, MicroBatcher, request_seed
from dupo_verl.generation.hf import HFBackend

MESSAGES = [{"role": "user", "content": "What is 2 + 3? Put your final answer within \\boxed{}."}]
OTHER = [{"role": "user", "content": "Translate the following sentence from English to German."}]


@pytest.fixture(scope="module")
def backend(tiny_model_path):
    return HFBackend(str(tiny_model_path))


def texts(result):
    return [c.text for c in result]


def test_n_samples_with_token_counts(backend):
    (result,) = backend.generate([GenerationRequest(MESSAGES, n=3, temperature=1.0, max_tokens=12, seed=5)])
    assert len(result) == 3
    assert all(isinstance(c.text, str) and 1 <= c.num_tokens <= 12 for c in result)
    assert len(set(texts(result))) > 1  # sampled, not copies


def test_seeded_requests_do_not_depend_on_their_batch(backend):
    alone = backend.generate([GenerationRequest(MESSAGES, n=2, temperature=1.0, max_tokens=10, seed=7)])[0]
    batch = backend.generate(
        [
            GenerationRequest(OTHER, n=1, temperature=1.0, max_tokens=10, seed=1),
            GenerationRequest(MESSAGES, n=2, temperature=1.0, max_tokens=10, seed=7),
            GenerationRequest(MESSAGES, n=2, temperature=1.0, max_tokens=10, seed=8),
        ]
    )
    assert texts(batch[1]) == texts(alone)
    assert texts(batch[2]) != texts(alone)


def test_greedy_samples_are_identical(backend):
    (result,) = backend.generate([GenerationRequest(MESSAGES, n=2, temperature=0.0, max_tokens=8, seed=1)])
    assert result[0].text == result[1].text


def test_micro_batcher_batches_and_keeps_per_request_seeds(backend):
    async def go():
        async with MicroBatcher(backend, seed=3) as generate:
            calls = [
                generate(m, n=1, temperature=1.0, top_p=1.0, max_tokens=8, session_id=f"s{i}")
                for i, m in enumerate([MESSAGES, OTHER, MESSAGES, OTHER])
            ]
            return await asyncio.gather(*calls), generate.stats

    results, stats = asyncio.run(go())
    assert stats.requests == 4 and stats.batches < 4
    for i, (messages, result) in enumerate(zip([MESSAGES, OTHER, MESSAGES, OTHER], results, strict=True)):
        seed = request_seed(3, f"s{i}", messages)
        direct = backend.generate(
            [GenerationRequest(messages, n=1, temperature=1.0, max_tokens=8, seed=seed)]
        )[0]
        assert texts(result) == texts(direct)
    assert stats.completion_tokens == sum(c.num_tokens for r in results for c in r)
