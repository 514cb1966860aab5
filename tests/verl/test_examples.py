"""Every example script's overrides compose with verl's Hydra config, pass verl's own validation,
and name only real DuPO options, so a renamed verl key or a typo fails here instead of on a GPU.

The scripts run for real (bash, `dupo-verl agent-loop-config`, variable expansion); `$PYTHON` is
pointed at a recorder that captures the `main_ppo` argv, which is composed in-process with the
Hydra compose API (what `main_ppo --cfg job` does, without a verl import per script). One test runs
the real `main_ppo --cfg job` to show a bad key fails there too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dupo_verl.cli.agent_loop_config import CONFIG_PATH
from dupo_verl.verl.anchor import require_anchor
from dupo_verl.verl.rows import resolve_options

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.sh"))


def _recorder(tmp_path: Path) -> Path:
    """A `$PYTHON` that prints its argv as JSON instead of starting verl."""
    path = tmp_path / "record_argv"
    path.write_text(
        f"#!/bin/sh\nexec '{sys.executable}' -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \"$@\"\n"
    )
    path.chmod(0o755)
    return path


def _run(
    script: Path, tmp_path: Path, *args: str, data: bool = True, python: str = sys.executable
) -> subprocess.CompletedProcess:
    train, val = tmp_path / "train.parquet", tmp_path / "val.parquet"
    if data:
        train.touch()
        val.touch()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # dupo-verl
        "PYTHON": python,
        "TRAIN_FILE": str(train),
        "VAL_FILE": str(val),
        "N_GPUS_PER_NODE": "8",
        "NNODES": "2",
    }
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env, timeout=600)


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {
        "grpo_math_self_dual.sh",
        "grpo_translation_self_dual.sh",
        "grpo_math_frozen_dual.sh",
        "grpo_math_anchored.sh",
    }


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_composes_and_validates(script, tmp_path):
    from hydra import compose, initialize_config_dir
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl_helpers import VERL_CONFIG_DIR

    proc = _run(script, tmp_path, python=str(_recorder(tmp_path)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    argv = json.loads(proc.stdout.strip().splitlines()[-1])
    assert argv[:2] == ["-m", "verl.trainer.main_ppo"]
    with initialize_config_dir(config_dir=VERL_CONFIG_DIR, version_base=None):
        cfg = compose("ppo_trainer", overrides=argv[2:])
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))

    assert cfg.algorithm.adv_estimator == "grpo"
    assert cfg.trainer.v1.trainer_mode == "dupo_sync"
    assert (cfg.trainer.n_gpus_per_node, cfg.trainer.nnodes) == (8, 2)  # the variables reach verl
    assert cfg.data.train_files == str(tmp_path / "train.parquet")
    # every +dupo key is a real option (DualOptions rejects unknown keys)
    options = resolve_options(OmegaConf.load(CONFIG_PATH)[0].dupo, cfg)
    assert options.dual_max_tokens == cfg.dupo.dual_max_tokens
    if "frozen" in script.stem:
        assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == "single_turn_agent"
        assert cfg.reward.reward_manager.name == "dupo" and cfg.reward.reward_model.enable is True
        assert cfg.reward.custom_reward_function.path == "pkg://reward_fns"
        assert cfg.reward.reward_model.enable_resource_pool is True
        # verl 0.9.1 would put the dual's servers to sleep and never wake them (the run hangs)
        assert cfg.reward.reward_model.rollout.free_cache_engine is False
        # the recommended judge (the frozen ensemble): a frozen copy of the policy, both duals rebuilt
        assert options.dual_aggregate == "min" and options.dual_questions_per_rollout == 2
        assert cfg.reward.reward_model.model_path == cfg.actor_rollout_ref.model.path
    else:
        assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == "dupo_agent"
        assert cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path == str(CONFIG_PATH)
    if "anchored" in script.stem:
        # the live judge (dupo_agent) and the frozen one (the reward-model servers, kept awake)
        assert options.judge == "anchored" and options.dual_aggregate == "min"
        assert cfg.reward.reward_manager.name == "dupo" and cfg.reward.reward_model.enable is True
        assert cfg.reward.reward_model.model_path == cfg.actor_rollout_ref.model.path  # the starting policy
        assert cfg.reward.reward_model.enable_resource_pool is True
        assert cfg.reward.reward_model.rollout.free_cache_engine is False
        require_anchor(cfg)


@pytest.mark.slow
def test_a_renamed_verl_key_fails_in_main_ppo(tmp_path):
    proc = _run(EXAMPLES[0], tmp_path, "--cfg", "job", "actor_rollout_ref.actor.grad_clipping=1.0")
    assert proc.returncode != 0 and "grad_clipping" in proc.stderr


def test_missing_data_points_at_prepare(tmp_path):
    proc = _run(EXAMPLES[0], tmp_path, data=False, python=str(_recorder(tmp_path)))
    assert proc.returncode == 1 and "dupo-verl prepare" in proc.stderr


# ---------------------------------------------------------------------------------------------
# The e2e tier runs each script itself on CPU under a layer of extra overrides
# (tests/e2e/example_layer.py). That layer may change only platform and size; this is the list.
# ---------------------------------------------------------------------------------------------

ALLOWED_LAYER_KEYS = (
    # batch and sequence sizes
    "data.train_batch_size",
    "data.val_batch_size",
    "data.max_prompt_length",
    "data.max_response_length",
    "actor_rollout_ref.actor.ppo_mini_batch_size",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu",
    "actor_rollout_ref.rollout.n",
    "actor_rollout_ref.rollout.val_kwargs.n",
    "dupo.dual_max_tokens",
    # vLLM(-CPU) engine settings and sizes, policy and dual servers
    "actor_rollout_ref.rollout.max_model_len",
    "actor_rollout_ref.rollout.max_num_seqs",
    "actor_rollout_ref.rollout.max_num_batched_tokens",
    "actor_rollout_ref.rollout.enforce_eager",
    "actor_rollout_ref.rollout.enable_sleep_mode",
    "actor_rollout_ref.rollout.checkpoint_engine.update_weights_bucket_megabytes",
    "reward.reward_model.rollout.max_model_len",
    "reward.reward_model.rollout.max_num_seqs",
    "reward.reward_model.rollout.max_num_batched_tokens",
    "reward.reward_model.rollout.enforce_eager",
    "reward.reward_model.rollout.enable_sleep_mode",
    # platform: CPU devices, processes and kernels
    "ray_kwargs",
    "transfer_queue",
    "data.dataloader_num_workers",
    "reward.num_workers",
    "actor_rollout_ref.rollout.agent.num_workers",
    "actor_rollout_ref.actor.strategy",
    "actor_rollout_ref.actor.use_torch_compile",
    "actor_rollout_ref.model.override_config.attn_implementation",
    # platform: CPUs emulate bf16, so weights, gradients and both vLLM servers run in float32
    "actor_rollout_ref.actor.fsdp_config.mixed_precision",
    "actor_rollout_ref.model.enable_gradient_checkpointing",
    "actor_rollout_ref.rollout.dtype",
    "reward.reward_model.rollout.dtype",
    # step counts and logging
    "trainer.total_training_steps",
    "trainer.total_epochs",
    "trainer.logger",
    "trainer.rollout_data_dir",
)
# The scripts' "change these" variables the layer may set: model, data, GPU/node counts, names.
ALLOWED_SCRIPT_KNOBS = {
    "MODEL", "DUAL_MODEL", "DATA_DIR", "TRAIN_FILE", "VAL_FILE", "N_GPUS_PER_NODE", "NNODES",
    "DUAL_GPUS", "DUAL_TP", "ROLLOUT_TP", "VAL_N", "PROJECT", "EXPERIMENT", "PYTHON",
}


def _layer_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("example_layer", REPO_ROOT / "tests" / "e2e" / "example_layer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _allowed(key: str) -> bool:
    return any(key == allowed or key.startswith(allowed + ".") for allowed in ALLOWED_LAYER_KEYS)


def _leaves(node, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        out: dict[str, object] = {}
        for key, value in node.items():
            out.update(_leaves(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def test_the_allow_list_rejects_behaviour():
    for key in ("actor_rollout_ref.actor.optim.lr", "actor_rollout_ref.actor.use_kl_loss", "dupo.dual_samples",
                "reward.reward_model.rollout.free_cache_engine", "actor_rollout_ref.rollout.temperature",
                "trainer.v1.trainer_mode", "data.max_prompt_lengths"):
        assert not _allowed(key), key
    assert _allowed("ray_kwargs.ray_init.num_gpus") and _allowed("data.max_prompt_length")


def test_every_example_has_a_cpu_layer():
    layer = _layer_module()
    assert set(layer.SCRIPTS) == {p.name for p in EXAMPLES}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_cpu_layer_changes_only_platform_and_size(script, tmp_path):
    """Every key of the layer is allow-listed, and composed with verl's config the layer changes no
    other leaf than those keys (checked on the composed configs with and without it)."""
    from hydra import compose, initialize_config_dir
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl_helpers import VERL_CONFIG_DIR

    layer = _layer_module()
    extra = layer.cpu_layer(script.name)
    bad = sorted({layer.override_key(o) for o in extra if not _allowed(layer.override_key(o))})
    assert not bad, f"the CPU layer changes behaviour, not platform or size: {bad}; fix the script instead"
    env = layer.script_env(script.name, model=tmp_path / "m", train_files=tmp_path / "t", val_files=tmp_path / "v",
                           python="python3", experiment="x", dual_model=tmp_path / "d")
    text = script.read_text()
    assert set(env) <= ALLOWED_SCRIPT_KNOBS
    assert all(f"{name}=${{{name}:-" in text for name in env), "the layer sets a variable the script does not read"

    recorder = str(_recorder(tmp_path))
    configs = []
    for args in ((), extra):
        proc = _run(script, tmp_path, *args, python=recorder)
        assert proc.returncode == 0, proc.stderr[-3000:]
        argv = json.loads(proc.stdout.strip().splitlines()[-1])
        with initialize_config_dir(config_dir=VERL_CONFIG_DIR, version_base=None):
            configs.append(compose("ppo_trainer", overrides=argv[2:]))
    plain, layered = (_leaves(OmegaConf.to_container(c, resolve=False)) for c in configs)
    changed = sorted(k for k in plain.keys() | layered.keys() if plain.get(k, "<absent>") != layered.get(k, "<absent>"))
    assert changed and all(_allowed(k) for k in changed), [k for k in changed if not _allowed(k)]
    cfg = configs[1]
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    assert cfg.trainer.total_training_steps == 2 and cfg.dupo.dual_max_tokens == 16
