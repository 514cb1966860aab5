"""A real OpenAI-compatible chat server on 127.0.0.1 that generates with a (tiny) transformers model.

The stand-in for `vllm serve` in tests: real HTTP, real generation (`tiny_server.TinyLM`), `n`
samples, per-request `seed` (sample i uses seed + i), `/v1/models`, run in its own thread so
synchronous tests and other event loops can use it. Fault injection for client tests: the first `fail_first` requests answer
`fail_status`, the first `malformed_first` answer broken JSON, `delay_s` holds every request.
Counts requests and the most requests in flight at once.

    with TinyOpenAIServer(model_path) as server:
        url = server.base_url  # http://127.0.0.1:<port>/v1

Also runnable by hand: `python tests/openai_server.py --model PATH --port 8000`.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web


class TinyOpenAIServer:
    def __init__(
        self,
        model_path: str | Path,
        *,
        served_name: str = "tiny",
        port: int = 0,
        fail_first: int = 0,
        fail_status: int = 503,
        malformed_first: int = 0,
        delay_s: float = 0.0,
    ) -> None:
        from tiny_server import TinyLM

        self.lm = TinyLM(model_path)
        self.served_name = served_name
        self.port = port
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.malformed_first = malformed_first
        self.delay_s = delay_s
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> TinyOpenAIServer:
        self._thread = threading.Thread(target=self._serve, name="tiny-openai-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("tiny OpenAI server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> TinyOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    # -- routes --------------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.served_name, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.Response:
        self.requests += 1
        number = self.requests
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if number <= self.fail_first:
                return web.json_response({"error": {"message": "injected failure"}}, status=self.fail_status)
            if number <= self.fail_first + self.malformed_first:
                return web.Response(text='{"choices": [', content_type="application/json")
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "body is not JSON")
            self.bodies.append(body)
            problem = _validate(body, self.served_name)
            if problem:
                return _error(404 if "model" in problem else 400, problem)
            texts, tokens = await asyncio.get_running_loop().run_in_executor(None, self._generate, body)
            return web.json_response(
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": self.served_name,
                    "choices": [
                        {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                        for i, t in enumerate(texts)
                    ],
                    "usage": {"completion_tokens": tokens},
                }
            )
        finally:
            self.in_flight -= 1

    async def _completions(self, request: web.Request) -> web.Response:
        """vLLM's completions endpoint, token-id prompts with `prompt_logprobs` (likelihood duals)."""
        from tiny_server import completions_prompt_logprobs

        self.requests += 1
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "body is not JSON")
        self.bodies.append(body)
        if body.get("model") not in (None, self.served_name):
            return _error(404, f"model {body.get('model')!r} not served")
        try:
            return web.json_response(await completions_prompt_logprobs(self.lm, body, self.served_name))
        except ValueError as exc:
            return _error(400, str(exc))

    def _generate(self, body: dict[str, Any]) -> tuple[list[str], int]:
        tokenizer = self.lm.tokenizer
        text = tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        seed = body.get("seed")
        texts, total = [], 0
        for i in range(int(body.get("n", 1))):
            token_ids, _ = self.lm.generate(
                prompt_ids,
                max_tokens=int(body.get("max_tokens", 16)),
                temperature=float(body.get("temperature", 1.0)),
                top_p=float(body.get("top_p", 1.0)),
                seed=None if seed is None else int(seed) + i,
            )
            total += len(token_ids)
            texts.append(tokenizer.decode(token_ids, skip_special_tokens=True))
        return texts, total


def _validate(body: Any, served_name: str) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if body.get("model") != served_name:
        return f"The model `{body.get('model')}` does not exist."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    if not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
        return "every message needs a string content"
    n, max_tokens = body.get("n", 1), body.get("max_tokens", 16)
    if not isinstance(n, int) or not 1 <= n <= 64:
        return "n must be an integer in [1, 64]"
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return "max_tokens must be a positive integer"
    return None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "code": status}}, status=status)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-name", default="tiny")
    args = parser.parse_args()
    server = TinyOpenAIServer(args.model, served_name=args.served_name, port=args.port).start()
    print(f"serving {args.model} as {args.served_name!r} at {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
