"""The main_ppo command of each method: its overrides compose with verl's own Hydra config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dupo_verl.demo import ppo


def _paths(tmp_path: Path) -> ppo.RunPaths:
    return ppo.RunPaths(
        model=tmp_path / "model", train_files=tmp_path / "train.parquet",
        val_files=[tmp_path / "val_primal.parquet", tmp_path / "val_dual.parquet"],
        agent_loop_config=tmp_path / "loops.yaml", workdir=tmp_path / "run",
    )


def _as_dict(overrides: list[str]) -> dict[str, str]:
    return {o.split("=", 1)[0].lstrip("+"): o.split("=", 1)[1] for o in overrides}


def test_methods_differ_only_in_their_agent(tmp_path):
    grpo = ppo.GRPOSettings(steps=7, batch_size=8, group_size=4, seed=3)
    runs = {m: _as_dict(ppo.overrides(m, _paths(tmp_path), grpo)) for m in ("dupo", "oracle", "shuffled")}
    assert runs["dupo"]["actor_rollout_ref.rollout.agent.default_agent_loop"] == "dupo_agent"
    assert runs["oracle"]["actor_rollout_ref.rollout.agent.default_agent_loop"] == "single_turn_agent"
    assert runs["shuffled"]["actor_rollout_ref.rollout.agent.default_agent_loop"] == "dupo_shuffled_agent"
    for key in set(runs["dupo"]) - {"actor_rollout_ref.rollout.agent.default_agent_loop", "trainer.experiment_name"}:
        assert runs["dupo"][key] == runs["oracle"][key] == runs["shuffled"][key], key
    d = runs["dupo"]
    assert d["dupo.hybrid_weight"] == "0.0"  # no gold label in the DuPO reward
    assert d["trainer.total_training_steps"] == "7" and d["actor_rollout_ref.rollout.n"] == "4"
    assert d["data.seed"] == "3" and d["actor_rollout_ref.rollout.seed"] == "3"
    assert d["trainer.save_freq"] == "7"  # the final model is saved for the after-training evaluation


def test_cpu_recipe_only_on_cpu(tmp_path):
    cpu = _as_dict(ppo.overrides("dupo", _paths(tmp_path), ppo.GRPOSettings(), device="cpu"))
    gpu = _as_dict(ppo.overrides("dupo", _paths(tmp_path), ppo.GRPOSettings(), device="cuda"))
    assert cpu["ray_kwargs.ray_init.num_gpus"] == "1" and "ray_kwargs.ray_init.num_gpus" not in gpu
    env_cpu = ppo.environment(_paths(tmp_path), Path("/tmp/x"), "cpu")
    env_gpu = ppo.environment(_paths(tmp_path), Path("/tmp/x"), "cuda")
    assert env_cpu["VERL_PLATFORM"] == "cpu" and "VERL_PLATFORM" not in env_gpu
    assert env_cpu["VERL_FILE_LOGGER_PATH"].endswith("metrics.jsonl")


def test_the_modules_the_demo_allowed_reach_the_jobs_workers(tmp_path, monkeypatch):
    """The translation demo's rows name its own language detector (`module:function`); the reward
    workers import it only when allowed, so what the demo process allowed travels in the job's env."""
    from dupo_verl.tasks import registry

    monkeypatch.delenv(registry.TASK_MODULES_ENV, raising=False)
    monkeypatch.setattr(registry, "_ALLOWED_MODULES", set())
    assert registry.TASK_MODULES_ENV not in ppo.environment(_paths(tmp_path), Path("/tmp/x"), "cpu")
    registry.allow_task_modules(["dupo_verl.demo.translation_data", "json"])
    env = ppo.environment(_paths(tmp_path), Path("/tmp/x"), "cpu")
    assert env[registry.TASK_MODULES_ENV] == "dupo_verl.demo.translation_data,json"


@pytest.mark.parametrize("method", ["dupo", "oracle", "dupo_anchored"])
def test_cpu_runs_in_float32_and_gpu_keeps_bf16(method, tmp_path):
    """CPUs emulate bf16: on CPU the actor, the rollout and a frozen judge run in float32, each key
    given once (the command a run logs is the one `--resume` compares)."""
    for device, rollout in (("cpu", "float32"), ("cuda", "bfloat16")):
        command = ppo.overrides(method, _paths(tmp_path), ppo.GRPOSettings(), device=device)
        keys = [ppo.override_key(o) for o in command]
        assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
        d = _as_dict(command)
        assert d["actor_rollout_ref.rollout.dtype"] == rollout
        fp32 = "{param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}"
        assert (d.get("actor_rollout_ref.actor.fsdp_config.mixed_precision") == fp32) == (device == "cpu")
        if method in ppo.FROZEN_JUDGE:
            assert (d.get("reward.reward_model.rollout.dtype") == "float32") == (device == "cpu")


def test_with_overrides_replaces_in_place_and_appends_new_keys():
    base = ["a=1", "+b.c=2", "d=3"]
    assert ppo.with_overrides(base, ["b.c=9", "++e=5", "a=0"]) == ["a=0", "b.c=9", "d=3", "++e=5"]
    assert ppo.with_overrides(base, []) == base


def test_frozen_dual_remedy_serves_the_warm_start_as_the_judge(tmp_path):
    paths = _paths(tmp_path)
    frozen = ppo.overrides("dupo_frozen", paths, ppo.GRPOSettings(), device="cpu")
    d = _as_dict(frozen)
    assert d["reward.reward_manager.name"] == "dupo"
    assert d["reward.reward_model.model_path"] == str(paths.model)  # the frozen copy of the start
    assert d["ray_kwargs.ray_init.num_gpus"] == "2"  # one fake GPU per vLLM server
    assert d["actor_rollout_ref.rollout.agent.default_agent_loop"] == "single_turn_agent"
    assert d["dupo.hybrid_weight"] == "0.0"
    assert len(d) == len(frozen)  # no key given twice


@pytest.mark.parametrize("bad", [{"group_size": 1}, {"batch_size": 6, "mini_batches": 4}, {"lr": 0}])
def test_bad_settings(bad, tmp_path):
    with pytest.raises(ValueError):
        ppo.overrides("dupo", _paths(tmp_path), ppo.GRPOSettings(**bad))
    with pytest.raises(ValueError, match="unknown method"):
        ppo.overrides("warm_start", _paths(tmp_path), ppo.GRPOSettings())


def test_overrides_compose_with_verl_config(tmp_path):
    """`main_ppo --cfg job` composes the config without running: every key must exist in verl."""
    argv = ppo.overrides("shuffled", _paths(tmp_path), ppo.GRPOSettings(steps=5, batch_size=4, group_size=2))
    argv += [o for o in ppo.overrides("dupo_frozen", _paths(tmp_path), ppo.GRPOSettings()) if o.startswith("reward.")]
    proc = subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", "--cfg", "job", *argv],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = yaml.safe_load(proc.stdout)
    assert config["algorithm"]["adv_estimator"] == "grpo"
    assert config["actor_rollout_ref"]["rollout"]["agent"]["default_agent_loop"] == "dupo_shuffled_agent"
    assert config["data"]["val_files"] == [str(p) for p in _paths(tmp_path).val_files]
    assert config["actor_rollout_ref"]["actor"]["checkpoint"]["save_contents"] == ["model", "hf_model"]
    assert config["dupo"]["dual_questions_per_rollout"] == 1
    assert config["trainer"]["v1"]["trainer_mode"] == "dupo_sync"
    assert config["reward"]["reward_model"]["enable_resource_pool"] is True


def test_micro_batch_fits_the_mini_batch(tmp_path):
    """verl splits each mini batch into micro batches: the micro batch may not exceed the mini batch."""
    grpo = ppo.GRPOSettings(batch_size=8, group_size=4, mini_batches=2)
    d = _as_dict(ppo.overrides("dupo", _paths(tmp_path), grpo))
    mini_samples = int(d["actor_rollout_ref.actor.ppo_mini_batch_size"]) * grpo.group_size
    assert mini_samples == 16
    assert mini_samples % int(d["actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu"]) == 0
