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
    yaml_kwargs = {k: v for k, v in OmegaConf.load(CONFIG_PATH)[0].items() if k not in ("name", "_target_")}
    options = resolve_options(yaml_kwargs, cfg)
    assert options.dual_max_tokens == cfg.dupo.dual_max_tokens
    if "frozen" in script.stem:
        assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == "single_turn_agent"
        assert cfg.reward.reward_manager.name == "dupo" and cfg.reward.reward_model.enable is True
        assert cfg.reward.custom_reward_function.path == "pkg://reward_fns"
        assert cfg.reward.reward_model.enable_resource_pool is True
    else:
        assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == "dupo_agent"
        assert cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path == str(CONFIG_PATH)


@pytest.mark.slow
def test_a_renamed_verl_key_fails_in_main_ppo(tmp_path):
    proc = _run(EXAMPLES[0], tmp_path, "--cfg", "job", "actor_rollout_ref.actor.grad_clipping=1.0")
    assert proc.returncode != 0 and "grad_clipping" in proc.stderr


def test_missing_data_points_at_prepare(tmp_path):
    proc = _run(EXAMPLES[0], tmp_path, data=False, python=str(_recorder(tmp_path)))
    assert proc.returncode == 1 and "dupo-verl prepare" in proc.stderr
