"""DuPO through the real `python -m verl.trainer.main_ppo` on CPU (issue 6, tests 1-4).

Data comes from `dupo-verl prepare`, the agent loop from the YAML `dupo-verl agent-loop-config`
prints, and the frozen dual from verl's own reward-model servers. Each test reads what verl
logged: per-step metrics (console and file logger; V1 logs the DuPO means through the
`dupo_sync` trainer) and, for V0, the per-sample rollout dump (`trainer.rollout_data_dir`), which
carries every `reward_extra_info` key there (V1's dump carries only uids and scores).

Tests that need a part of dupo_verl that is not importable yet are skipped with the missing
module named, so they turn on by themselves once it lands.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from checks import assert_trained, rollout_dump
from conftest import FLORES, GSM8K, module_available
from ppo_config import custom_reward

SELF_DUAL_MODULES = ("dupo_verl.data.prepare", "dupo_verl.verl.agent_loop", "dupo_verl.cli.agent_loop_config")
V1_METRICS_MODULE = "dupo_verl.verl.trainer"
FROZEN_DUAL_MODULES = ("dupo_verl.data.prepare", "dupo_verl.verl.reward_manager")
# Short dual answers keep each step at a few seconds; the dual still really generates.
DUAL_OPTIONS = ["+dupo.dual_max_tokens=16"]


def requires(*modules: str):
    missing = [m for m in modules if not module_available(m)]
    return pytest.mark.skipif(bool(missing), reason=f"not importable yet: {', '.join(missing)}")


def dupo_cli(*args: str) -> str:
    """Run `dupo-verl <args>` with this venv's interpreter; return stdout, fail with its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "dupo_verl", *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"dupo-verl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


def short_gsm8k_subset(out: Path, rows: int = 16, max_chars: int = 220) -> Path:
    """The first `rows` GSM8K problems short enough for a 256-token prompt, as JSONL."""
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = []
    with open(GSM8K, encoding="utf-8") as fh:
        for line in fh:
            if len(json.loads(line)["problem"]) <= max_chars:
                kept.append(line)
            if len(kept) == rows:
                break
    out.write_text("".join(kept), encoding="utf-8")
    return out


def short_flores_pair(out_dir: Path, src: str, tgt: str, rows: int = 16, max_chars: int = 140) -> tuple[Path, Path]:
    """Line-aligned FLORES subsets (source, reference) of sentences short on both sides."""
    out_dir.mkdir(parents=True, exist_ok=True)
    src_lines = (FLORES / f"{src}.txt").read_text(encoding="utf-8").splitlines()
    tgt_lines = (FLORES / f"{tgt}.txt").read_text(encoding="utf-8").splitlines()
    pairs = [(s, t) for s, t in zip(src_lines, tgt_lines, strict=True) if len(s) <= max_chars and len(t) <= max_chars]
    pairs = pairs[:rows]
    src_path, tgt_path = out_dir / f"{src}.txt", out_dir / f"{tgt}.txt"
    src_path.write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    tgt_path.write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    return src_path, tgt_path


def self_dual_overrides(use_v1: bool) -> list[str]:
    cfg = dupo_cli("agent-loop-config").strip()
    assert Path(cfg).is_file(), cfg
    extra = [
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={cfg}",
        "actor_rollout_ref.rollout.agent.default_agent_loop=dupo_agent",
        *DUAL_OPTIONS,
        *custom_reward("pkg://reward_fns"),
    ]
    if use_v1:
        extra.append("trainer.v1.trainer_mode=dupo_sync")
    return extra


def assert_dupo_rollouts(workdir: Path, steps: int = 2) -> list[dict]:
    """V0 dump: every sample carries DuPO metrics, its reward is the DuPO reward, duals really ran."""
    rows = [row for step in range(1, steps + 1) for row in rollout_dump(workdir, step)]
    assert rows
    for row in rows:
        assert "dupo_reward" in row, f"no DuPO metrics in the rollout dump: {sorted(row)}"
        assert 0.0 <= row["dupo_reward"] <= 1.0
        assert row["score"] == pytest.approx(row["dupo_reward"], abs=1e-6), "trained reward is not the DuPO reward"
        assert row["dupo_dual_errors"] == 0, f"dual calls failed: {row}"
    assert sum(row["dupo_dual_tokens"] for row in rows) > 0, "no dual generation happened"
    return rows


def assert_dupo_step_metrics(steps: dict[int, dict[str, float]], count: int = 2) -> None:
    """The DuPO means logged at each training step (V1 `dupo_*` trainers)."""
    for step in range(1, count + 1):
        metrics = steps[step]
        assert "dupo/reward/mean" in metrics, f"step {step}: no DuPO metrics: {sorted(metrics)}"
        assert 0.0 <= metrics["dupo/reward/mean"] <= 1.0
        assert metrics["dupo/dual_errors/mean"] == 0.0
        assert metrics["response/aborted_ratio"] == 0.0
        # The reward GRPO trained on is the DuPO reward (no other scorer ran).
        assert metrics["critic/score/mean"] == pytest.approx(metrics["dupo/reward/mean"], abs=1e-4)
    assert sum(steps[s]["dupo/dual_tokens/mean"] for s in range(1, count + 1)) > 0


@pytest.fixture(scope="module")
def math_parquet(e2e_root: Path) -> Path:
    src = short_gsm8k_subset(e2e_root / "data" / "gsm8k_short.jsonl")
    out = e2e_root / "data" / "dupo_math.parquet"
    dupo_cli("prepare", "math", "--input", str(src), "--output", str(out), "--answer-key", "answer", "--no-progress")
    return out


@requires(*SELF_DUAL_MODULES)
@pytest.mark.parametrize("use_v1", [True, False], ids=["v1", "v0"])
def test_math_self_dual(run_ppo, math_parquet: Path, use_v1: bool) -> None:
    if use_v1 and not module_available(V1_METRICS_MODULE):
        pytest.skip(f"not importable yet: {V1_METRICS_MODULE}")
    result, workdir = run_ppo(
        f"dupo_math_self_dual_{'v1' if use_v1 else 'v0'}",
        train_files=math_parquet,
        extra=self_dual_overrides(use_v1),
        use_v1=use_v1,
    )
    assert_trained(result, steps=2)
    if use_v1:
        assert_dupo_step_metrics(result.steps)
    else:
        assert_dupo_rollouts(workdir)


@requires(*SELF_DUAL_MODULES, V1_METRICS_MODULE)
def test_translation_self_dual(run_ppo, e2e_root: Path) -> None:
    src, ref = short_flores_pair(e2e_root / "data" / "flores", "eng_Latn", "deu_Latn")
    out = e2e_root / "data" / "dupo_translation.parquet"
    dupo_cli(
        "prepare", "translation", "--input", str(src), "--reference", str(ref),
        "--src-lang", "eng_Latn", "--tgt-lang", "deu_Latn", "--output", str(out), "--no-progress",
    )
    result, _ = run_ppo("dupo_translation_self_dual_v1", train_files=out, extra=self_dual_overrides(True))
    assert_trained(result, steps=2)
    assert_dupo_step_metrics(result.steps)


@requires(*FROZEN_DUAL_MODULES, V1_METRICS_MODULE)
def test_math_frozen_dual_reward_model(run_ppo, e2e_root: Path, tiny_dual: Path) -> None:
    src = short_gsm8k_subset(e2e_root / "data" / "gsm8k_short_frozen.jsonl")
    out = e2e_root / "data" / "dupo_math_frozen.parquet"
    dupo_cli(
        "prepare", "math", "--input", str(src), "--output", str(out), "--answer-key", "answer",
        "--agent-name", "single_turn_agent", "--no-progress",
    )
    extra = [
        "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent",
        *custom_reward("pkg://reward_fns"),
        "reward.reward_manager.name=dupo",
        "reward.reward_model.enable=True",
        f"reward.reward_model.model_path={tiny_dual}",
        "reward.reward_model.rollout.name=vllm",
        "reward.reward_model.rollout.tensor_model_parallel_size=1",
        "reward.reward_model.rollout.enforce_eager=True",
        "reward.reward_model.rollout.max_model_len=1024",
        "reward.reward_model.rollout.max_num_seqs=16",
        "reward.reward_model.rollout.max_num_batched_tokens=2048",
        "+reward.reward_model.rollout.enable_sleep_mode=False",
        # verl puts the reward model to sleep after start-up when this is on, and with its own
        # resource pool never wakes it: every dual request would wait forever.
        "reward.reward_model.rollout.free_cache_engine=False",
        # V1 passes dataset columns to a reward model only when it has its own resource pool.
        "reward.reward_model.enable_resource_pool=True",
        "reward.reward_model.n_gpus_per_node=1",
        "reward.reward_model.nnodes=1",
        "+ray_kwargs.ray_init.num_gpus=2",
        "trainer.v1.trainer_mode=dupo_sync",
        *DUAL_OPTIONS,
    ]
    result, _ = run_ppo("dupo_math_frozen_dual_v1", train_files=out, extra=extra)
    assert_trained(result, steps=2)
    assert_dupo_step_metrics(result.steps)
