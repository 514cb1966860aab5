"""Probe 17 §6: a chat reply's `usage.completion_tokens` that is not a count never costs the reply
and never enters the totals as a negative or absurd number."""

from __future__ import annotations

import json

import pytest
from tiny_server import serve_routes

from dupo_verl.generation.openai_http import _Transient, parse_chat_response


def body(usage: str, n: int = 2) -> str:
    """A chat-completions body written by hand, so NaN / Infinity can appear as a server sends them."""
    choices = ", ".join(f'{{"index": {i}, "message": {{"content": "\\\\boxed{{16}}"}}}}' for i in range(n))
    return f'{{"choices": [{choices}], "usage": {{"completion_tokens": {usage}}}}}'


@pytest.mark.parametrize(
    "usage", ["Infinity", "-Infinity", "NaN", "-100", "12.5", '"7"', "true", "null", "1e400"]
)
def test_a_token_count_that_is_not_a_count_is_unknown(usage: str) -> None:
    completions = parse_chat_response(body(usage), 2)
    assert [c.text for c in completions] == ["\\boxed{16}", "\\boxed{16}"]  # the reply is kept
    assert [c.num_tokens for c in completions] == [0, 0]  # unknown, as when usage is missing


@pytest.mark.parametrize("usage, split", [("7", [4, 3]), ("7.0", [4, 3]), ("0", [0, 0])])
def test_a_real_token_count_is_split_over_the_choices(usage: str, split: list[int]) -> None:
    assert [c.num_tokens for c in parse_chat_response(body(usage), 2)] == split


def test_an_absurd_choice_index_is_a_malformed_reply_that_is_retried() -> None:
    reply = '{"choices": [{"index": Infinity, "message": {"content": "x"}}]}'
    with pytest.raises(_Transient, match="malformed chat completion"):
        parse_chat_response(reply, 1)
    assert (
        parse_chat_response(json.dumps({"choices": [{"index": 0, "message": {"content": "x"}}]}), 1)[0].text
        == "x"
    )


@pytest.mark.parametrize("usage", ["Infinity", "NaN", "-100", "12.5", '"7"', "1e400", "7"])
async def test_the_frozen_judge_router_reads_token_counts_as_the_http_backend_does(usage: str) -> None:
    """The reward manager's `RouterGenerate` parsed `int(completion_tokens)`: Infinity raised and the
    frozen judge's good answers were lost as a dual error; now both paths share `token_count`."""
    import aiohttp
    from aiohttp import web

    from dupo_verl.verl.generate import RouterGenerate

    async def chat(request: web.Request) -> web.Response:
        return web.Response(text=body(usage), content_type="application/json")

    runner, address = await serve_routes({"/v1/chat/completions": chat})
    try:
        async with aiohttp.ClientSession() as session:
            router = RouterGenerate(address, session)
            got = await router([{"role": "user", "content": "q"}], n=2, temperature=0.6, top_p=1.0,
                               max_tokens=8, session_id="s")
    finally:
        await runner.cleanup()
    assert [c.text for c in got] == ["\\boxed{16}", "\\boxed{16}"]
    assert [c.num_tokens for c in got] == ([4, 3] if usage == "7" else [0, 0])
