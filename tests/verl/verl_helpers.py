"""Helpers for the verl-glue tests: a small two-number DuPO task, verl configs, rows and workers.

The task is defined here (not taken from `dupo_verl.tasks`) so these tests pin down the glue's
behaviour with replies whose right answer is known: the row hides `b` of `a + b = s`, the
primal answer is `\\boxed{s}`, and the dual must say `b`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import verl
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from dupo_verl.tasks import Decomposition, DualQuestion, DualTask, Messages, register_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for tiny_server
from tiny_server import TinyLM, TinyLMServer  # noqa: E402

VERL_CONFIG_DIR = str(Path(verl.__file__).parent / "trainer" / "config")
TASK = "verl_test_plus"
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_INT = re.compile(r"-?\d+")


@register_task(TASK)
class PlusTask(DualTask):
    """x = (a, b), y = a + b; the dual gets (y, a) and must give b back."""

    ability = "math"

    def decompose(self, example: Mapping[str, Any], seed: int = 0) -> Decomposition:
        a, b = int(example["a"]), int(example["b"])
        return Decomposition(duals=[DualQuestion(masked_text=f"{a} + Vb", variable="Vb", value=str(b))])

    def primal_messages(self, example: Mapping[str, Any]) -> Messages:
        return [
            {"role": "user", "content": f"What is {example['a']} + {example['b']}? Answer in \\boxed{{}}."}
        ]

    def extract_primal_answer(self, response: str) -> str | None:
        found = _BOXED.findall(response)
        return found[-1].strip() if found else None

    def dual_messages(self, dual: DualQuestion, primal_answer: str) -> Messages:
        return [
            {
                "role": "user",
                "content": f"DUAL {dual.masked_text} = {primal_answer}. What is {dual.variable}?",
            }
        ]

    def score_reconstruction(self, dual: DualQuestion, dual_response: str) -> float:
        found = _INT.findall(dual_response)
        return 1.0 if found and found[-1] == dual.value else 0.0

    def leaks(self, dual: DualQuestion, primal_answer: str) -> bool:
        return dual.value in _INT.findall(primal_answer)

    def gold_score(self, response: str, ground_truth: str) -> float | None:
        answer = self.extract_primal_answer(response)
        return 1.0 if answer is not None and answer == ground_truth.strip() else 0.0


def plus_row(
    index: int,
    a: int,
    b: int,
    *,
    hidden: Sequence[tuple[str, str]] | None = None,
    gold: bool = True,
    agent_name: str = "dupo_agent",
) -> dict[str, Any]:
    """One verl row of the plus task; `hidden` lists (masked_text, value) dual questions."""
    hidden = hidden or [(f"{a} + Vb", str(b))]
    duals = [{"masked_text": m, "variable": "Vb", "value": v, "template": 0} for m, v in hidden]
    prompt = [{"role": "user", "content": f"What is {a} + {b}? Answer in \\boxed{{}}."}]
    return {
        "data_source": "plus",
        "prompt": prompt,
        "raw_prompt": prompt,
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": str(a + b) if gold else ""},
        "extra_info": {"index": index, "dupo": {"task": TASK, "params": {"unused": 0}, "duals": duals}},
        "index": index,
        "agent_name": agent_name,
    }


def rows_to_batch(rows: Sequence[Mapping[str, Any]]):
    """The non-tensor batch verl's V0 trainer hands `AgentLoopWorker.generate_sequences`."""
    from verl import DataProto

    keys = ["data_source", "raw_prompt", "ability", "reward_model", "extra_info", "index", "agent_name"]
    non_tensors = {}
    for key in keys:
        arr = np.empty(len(rows), dtype=object)
        arr[:] = [row[key] for row in rows]
        non_tensors[key] = arr
    return DataProto.from_dict(non_tensors=non_tensors)


def verl_config(
    model_path: str | Path,
    *overrides: str,
    prompt_length: int = 96,
    response_length: int = 24,
    dual_max_tokens: int | None = 16,
) -> DictConfig:
    """verl's full `ppo_trainer` config composed with Hydra, as `main_ppo` would see it.

    `dual_max_tokens` (a `+dupo` override) keeps the dual budget inside the tiny context.
    """
    if dual_max_tokens is not None:
        overrides = (*overrides, f"+dupo.dual_max_tokens={dual_max_tokens}")
    with initialize_config_dir(config_dir=VERL_CONFIG_DIR, version_base=None):
        return compose(
            "ppo_trainer",
            overrides=[
                f"actor_rollout_ref.model.path={model_path}",
                "actor_rollout_ref.rollout.name=vllm",
                f"actor_rollout_ref.rollout.prompt_length={prompt_length}",
                f"actor_rollout_ref.rollout.response_length={response_length}",
                "actor_rollout_ref.rollout.calculate_log_probs=True",
                *overrides,
            ],
        )


def make_server(tiny_lm: TinyLM, config: DictConfig, **kwargs: Any) -> TinyLMServer:
    rollout = config.actor_rollout_ref.rollout
    return TinyLMServer(
        tiny_lm,
        prompt_length=rollout.prompt_length,
        response_length=rollout.response_length,
        max_model_len=rollout.max_model_len,
        **kwargs,
    )


def make_worker(config: DictConfig, server: TinyLMServer):
    """verl's own `AgentLoopWorker` (the class Ray wraps), talking to the stand-in server."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    return AgentLoopWorker(config, llm_client=server)


def is_dual(call) -> bool:
    return "DUAL " in call.prompt_text


def primal_reply(text: str):
    """reply_fn answering every primal prompt with `text` and leaving dual prompts to the model."""
    return lambda call: None if is_dual(call) else text


async def run_dupo_loop(config, server, row):
    """Instantiate `dupo_agent` the way AgentLoopWorker does and run one row."""
    import hydra
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry
    from verl.utils.dataset.rl_dataset import RLHFDataset

    worker = make_worker(config, server)
    loop = hydra.utils.instantiate(
        config=_agent_loop_registry["dupo_agent"],
        trainer_config=DictConfigWrap(config=config),
        server_manager=server,
        tokenizer=worker.tokenizer,
        processor=None,
        hf_model_type=worker.hf_model_type,
        dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(config.data),
        tools=ToolListWrap([]),
    )
    kwargs = {k: v for k, v in row.items() if k != "agent_name"}
    return loop, await loop.run({"temperature": 1.0, "top_p": 1.0, "logprobs": True}, priority=0, **kwargs)
