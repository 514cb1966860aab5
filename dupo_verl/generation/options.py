"""`--backend vllm|openai|hf` and its flags, shared by the commands that generate."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from dupo_verl.generation.base import GenerationBackend

BACKENDS = ("vllm", "openai", "hf")


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object given on the command line."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that choose and configure the generation backend."""
    group = parser.add_argument_group("generation backend")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        required=True,
        help="vllm offline, an OpenAI-compatible server, or transformers",
    )
    group.add_argument(
        "--model",
        help="model path or name (for openai: the served model name; default: the server's first model)",
    )
    group.add_argument("--base-url", help="openai: server URL including /v1, e.g. http://127.0.0.1:8000/v1")
    group.add_argument(
        "--api-key",
        default=os.environ.get("OPENAI_API_KEY"),
        help="openai: bearer token (default $OPENAI_API_KEY)",
    )
    group.add_argument(
        "--tokenizer",
        help="openai with --dual-mode likelihood: the served model's tokenizer (path or hub name; default --model)",
    )
    group.add_argument("--max-concurrency", type=int, default=64, help="openai: requests in flight at most")
    group.add_argument("--request-timeout", type=float, default=600.0, help="openai: seconds per request")
    group.add_argument("--http-retries", type=int, default=3, help="openai: retries of a transient failure")
    group.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model")
    group.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm: share of GPU memory")
    group.add_argument("--max-model-len", type=int, help="vllm: context length")
    group.add_argument(
        "--dtype", default="auto", help="vllm/hf: weights dtype (auto, bfloat16, float32, ...)"
    )
    group.add_argument(
        "--vllm-kwargs", type=json_object, default={}, help="vllm: extra vllm.LLM arguments as JSON"
    )
    group.add_argument("--device", default="cpu", help="hf: torch device")
    group.add_argument(
        "--chat-template-kwargs",
        type=json_object,
        default={},
        help="extra chat-template arguments as JSON, e.g. '{\"enable_thinking\": true}'",
    )
    group.add_argument(
        "--batch-size", type=int, help="most requests per backend call (default: the backend's)"
    )


def build_backend(args: argparse.Namespace) -> GenerationBackend:
    """The backend named by `--backend`, with a clear error for a missing flag."""
    if args.backend == "openai":
        if not args.base_url:
            raise SystemExit("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        from dupo_verl.generation.openai_http import OpenAIBackend

        return OpenAIBackend(
            args.base_url,
            args.model,
            api_key=args.api_key,
            max_concurrency=args.max_concurrency,
            timeout_s=args.request_timeout,
            max_retries=args.http_retries,
            chat_template_kwargs=args.chat_template_kwargs,
            tokenizer=getattr(args, "tokenizer", None),
        )
    if not args.model:
        raise SystemExit(f"--backend {args.backend} needs --model (a local path or hub name)")
    if args.backend == "vllm":
        from dupo_verl.generation.vllm_offline import VLLMBackend

        return VLLMBackend(
            args.model,
            seed=args.seed,
            tensor_parallel_size=args.tensor_parallel_size,
            gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=args.max_model_len,
            dtype=args.dtype,
            chat_template_kwargs=args.chat_template_kwargs,
            llm_kwargs=args.vllm_kwargs,
        )
    from dupo_verl.generation.hf import HFBackend

    return HFBackend(
        args.model, device=args.device, dtype=args.dtype, chat_template_kwargs=args.chat_template_kwargs
    )
