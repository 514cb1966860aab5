"""The OpenAI-compatible backend against a real HTTP server (tests/openai_server.py) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest
from openai_server import TinyOpenAIServer

from dupo_verl.generation import GenerationError, GenerationRequest, MicroBatcher
from dupo_verl.generation.openai_http import OpenAIBackend

MESSAGES = [{"role": "user", "content": "What is 2 + 3? Put your final answer within \\boxed{}."}]


def request(seed=1, n=1, max_tokens=6):
    return GenerationRequest(MESSAGES, n=n, temperature=1.0, max_tokens=max_tokens, seed=seed)


def run(backend, requests):
    async def go():
        try:
            return await backend.agenerate(requests)
        finally:
            await backend.aclose()

    return asyncio.run(go())


@pytest.fixture
def serve(tiny_model_path):
    servers = []

    def start(**faults):
        server = TinyOpenAIServer(tiny_model_path, **faults).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def client(server, **kw):
    kw.setdefault("backoff_s", 0.01)
    return OpenAIBackend(server.base_url, kw.pop("model", "tiny"), **kw)


def test_n_samples_seeded_and_model_discovered(serve):
    server = serve()
    backend = OpenAIBackend(server.base_url)  # no model name: the server's first model
    first, again, other = run(backend, [request(seed=11, n=3), request(seed=11, n=3), request(seed=12, n=3)])
    assert backend.model == "tiny"
    assert len(first) == 3 and all(isinstance(c.text, str) for c in first)
    assert [c.text for c in first] == [c.text for c in again]
    assert [c.text for c in first] != [c.text for c in other]
    assert all(0 <= c.num_tokens <= 6 for c in first)
    body = server.bodies[0]
    assert body["n"] == 3 and body["seed"] == 11 and body["max_tokens"] == 6 and body["model"] == "tiny"


def test_transient_failures_are_retried(serve):
    server = serve(fail_first=2, fail_status=503)
    (result,) = run(client(server, max_retries=3), [request()])
    assert len(result) == 1 and server.requests == 3

    server = serve(malformed_first=1)
    (result,) = run(client(server, max_retries=1), [request()])
    assert len(result) == 1 and server.requests == 2


def test_persistent_failure_is_reported_per_request(serve):
    server = serve(fail_first=100, fail_status=500)
    results = run(client(server, max_retries=1), [request(seed=1), request(seed=2)])
    assert all(isinstance(r, GenerationError) for r in results)
    assert "after 2 attempts" in str(results[0]) and server.requests == 4


def test_client_errors_are_not_retried(serve):
    server = serve()
    (result,) = run(client(server, model="no-such-model", max_retries=3), [request()])
    assert isinstance(result, GenerationError) and "404" in str(result) and "does not exist" in str(result)
    assert server.requests == 1


def test_timeout_then_give_up(serve):
    server = serve(delay_s=1.0)
    start = time.monotonic()
    (result,) = run(client(server, timeout_s=0.2, max_retries=1), [request()])
    assert isinstance(result, GenerationError) and "TimeoutError" in str(result)
    assert server.requests == 2
    assert time.monotonic() - start < 1.9  # did not wait for the slow server


def test_concurrency_limit_is_respected(serve):
    server = serve(delay_s=0.3)
    results = run(client(server, max_concurrency=2), [request(seed=i, max_tokens=2) for i in range(6)])
    assert all(isinstance(r, list) for r in results)
    assert server.max_in_flight == 2 and server.requests == 6


def test_behind_the_micro_batcher(serve):
    server = serve()
    backend = client(server)

    async def go():
        async with MicroBatcher(backend, seed=0) as generate:
            out = await asyncio.gather(
                *(
                    generate(MESSAGES, n=2, temperature=0.7, top_p=0.9, max_tokens=4, session_id=f"q{i}")
                    for i in range(3)
                )
            )
        await backend.aclose()
        return out

    results = asyncio.run(go())
    assert [len(r) for r in results] == [2, 2, 2]
    assert {b["temperature"] for b in server.bodies} == {0.7} and {b["top_p"] for b in server.bodies} == {0.9}
    assert len({b["seed"] for b in server.bodies}) == 3
