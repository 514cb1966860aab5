"""What the dual pass costs inside verl's rollout: `dupo_agent` against `single_turn_agent`.

The same FLORES sentences (English -> German, prepared by `dupo-verl prepare translation`) go
through verl's own `AgentLoopWorker.generate_sequences` twice per round, once per agent loop, on
one generation engine. The DuPO loop adds its back-translations. If it adds nothing but the dual
tokens themselves,

    DuPO time / plain time  ~=  (primal + dual tokens of the DuPO run) / primal tokens of the plain run

and the target is an overhead (the ratio of the two) of at most 1.10.

Engines (`--engine`): `tiny` = the stand-in server of the tests (`tests/tiny_server.py`), a real
HF causal LM (default: the random-weight tiny model) generating one request at a time on CPU.
Add an engine by adding a factory to `ENGINES`.

    python benchmarks/bench_agent_loop.py [--engine tiny] [--rows 12] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
FLORES = REPO_ROOT.parent / "shared" / "data" / "translation" / "flores_devtest"
AGENTS = ("single_turn_agent", "dupo_agent")


def tiny_engine(args: argparse.Namespace, config: Any) -> Any:
    """The tests' `TinyLMServer`: `LLMServerClient.generate` over an HF model, one request at a time."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from tiny_server import TinyLM, TinyLMServer

    rollout = config.actor_rollout_ref.rollout
    return TinyLMServer(
        TinyLM(args.model),
        prompt_length=rollout.prompt_length,
        response_length=rollout.response_length,
        max_model_len=rollout.max_model_len,
    )


ENGINES: dict[str, Callable[[argparse.Namespace, Any], Any]] = {"tiny": tiny_engine}


def prepare_rows(out_dir: Path, rows: int) -> Path:
    """FLORES eng->deu rows through the real `dupo-verl prepare translation`."""
    source = out_dir / "eng.txt"
    lines = (FLORES / "eng_Latn.txt").read_text(encoding="utf-8").splitlines()[:rows]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = out_dir / "bench.parquet"
    cmd = [sys.executable, "-m", "dupo_verl", "prepare", "translation", "--input", str(source)]
    cmd += ["--src-lang", "eng_Latn", "--tgt-lang", "deu_Latn", "--output", str(output), "--no-progress"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return output


def compose_config(args: argparse.Namespace) -> Any:
    import verl
    from hydra import compose, initialize_config_dir

    from dupo_verl.cli.agent_loop_config import CONFIG_PATH

    overrides = [
        f"actor_rollout_ref.model.path={args.model}",
        "actor_rollout_ref.rollout.name=vllm",
        f"data.max_prompt_length={args.prompt_length}",
        f"data.max_response_length={args.response_length}",
        "actor_rollout_ref.rollout.temperature=1.0",
        "actor_rollout_ref.rollout.calculate_log_probs=True",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={CONFIG_PATH}",
        f"+dupo.dual_samples={args.dual_samples}",
        f"+dupo.dual_max_tokens={args.dual_max_tokens}",
        "+dupo.dual_temperature=1.0",
        "+dupo.max_answer_chars=100000",
    ]
    with initialize_config_dir(
        config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None
    ):
        return compose("ppo_trainer", overrides=overrides)


def load_batch(parquet: Path, config: Any, n: int) -> Any:
    """The batch verl's trainer hands the agent loop workers (RLHFDataset -> collate -> repeat n)."""
    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    tokenizer = AutoTokenizer.from_pretrained(config.actor_rollout_ref.model.path)
    dataset = RLHFDataset([str(parquet)], tokenizer, config.data)
    batch = DataProto.from_single_dict(collate_fn([dataset[i] for i in range(len(dataset))]))
    return batch.repeat(repeat_times=n, interleave=True)


async def run_agent(worker: Any, batch: Any, agent: str) -> dict[str, float]:
    batch = batch.slice(0, len(batch))  # a fresh view: generate_sequences adds columns
    batch.non_tensor_batch["agent_name"] = np.array([agent] * len(batch), dtype=object)
    start, cpu_start = time.perf_counter(), time.process_time()
    out = await worker.generate_sequences(batch)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    dual = (
        float(out.non_tensor_batch["dupo_dual_tokens"].sum())
        if "dupo_dual_tokens" in out.non_tensor_batch
        else 0.0
    )
    return {"wall": wall, "cpu": cpu, "primal": float(out.batch["response_mask"].sum()), "dual": dual}


async def bench(args: argparse.Namespace) -> None:
    import torch
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.model is None:
            from dupo_verl.demo.tiny_lm import build_tiny_lm

            args.model = str(build_tiny_lm(tmp_path / "tiny_lm"))
        config = compose_config(args)
        batch = load_batch(prepare_rows(tmp_path, args.rows), config, args.n)
        worker = AgentLoopWorker(config, llm_client=ENGINES[args.engine](args, config))

        for agent in AGENTS:  # warm-up, not timed
            await run_agent(worker, batch.slice(0, min(2, len(batch))), agent)
        results: dict[str, list[dict[str, float]]] = {agent: [] for agent in AGENTS}
        for _ in range(args.rounds):  # interleaved, so load on a shared machine hits both alike
            for agent in AGENTS:
                results[agent].append(await run_agent(worker, batch, agent))

    def med(agent: str, key: str) -> float:
        """Times: the best round (least disturbed by other load); token counts: the median round."""
        values = [r[key] for r in results[agent]]
        return min(values) if key in ("wall", "cpu") else statistics.median(values)

    plain, dupo = AGENTS
    print(
        f"engine={args.engine} model={args.model} rollouts={len(batch)} rounds={args.rounds} "
        f"dual_samples={args.dual_samples} dual_max_tokens={args.dual_max_tokens} threads={args.threads}"
    )
    print(
        f"{'agent loop':<20}{'wall s':>9}{'cpu s':>9}{'primal tok':>12}{'dual tok':>10}{'all tok':>10}   (best time, median tokens)"
    )
    for agent in AGENTS:
        total = med(agent, "primal") + med(agent, "dual")
        print(
            f"{agent:<20}{med(agent, 'wall'):>9.3f}{med(agent, 'cpu'):>9.3f}"
            f"{med(agent, 'primal'):>12.0f}{med(agent, 'dual'):>10.0f}{total:>10.0f}"
        )
    token_ratio = (med(dupo, "primal") + med(dupo, "dual")) / med(plain, "primal")
    print(f"token ratio  (primal+dual)/primal = {token_ratio:.3f}")
    for clock in ("wall", "cpu"):  # CPU time is the steadier clock on a shared machine
        time_ratio = med(dupo, clock) / med(plain, clock)
        print(
            f"{clock:<4} time ratio dupo/plain = {time_ratio:.3f}   "
            f"overhead = time ratio / token ratio = {time_ratio / token_ratio:.3f}  (target <= 1.10)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=sorted(ENGINES), default="tiny")
    parser.add_argument("--model", default=None, help="HF model path (default: build the random tiny model)")
    parser.add_argument("--rows", type=int, default=12, help="FLORES sentences")
    parser.add_argument("--n", type=int, default=2, help="rollouts per sentence")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prompt-length", type=int, default=256)
    parser.add_argument("--response-length", type=int, default=48)
    parser.add_argument("--dual-samples", type=int, default=2)
    parser.add_argument("--dual-max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (tiny engine)")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
