"""The `main_ppo` command lines in README.md compose with verl's Hydra config.

README is what users copy; a renamed verl key or a DuPO option that no longer exists must fail here.
The `...` placeholders are dropped and `$(dupo-verl agent-loop-config)` is replaced by the real path.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from dupo_verl.cli.agent_loop_config import CONFIG_PATH
from dupo_verl.verl.rows import resolve_options

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_main_ppo_commands() -> list[list[str]]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        if "python -m verl.trainer.main_ppo" not in block:
            continue
        lines = [ln for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("...")]
        text = " ".join(ln.rstrip("\\").strip() for ln in lines)
        text = text.replace("$(dupo-verl agent-loop-config)", str(CONFIG_PATH)).replace("$HOME", "/home/user")
        argv = shlex.split(text, comments=True)
        argv = [a for a in argv if a != "..."]  # "your other settings" placeholders
        commands.append(argv[argv.index("verl.trainer.main_ppo") + 1 :])
    return commands


def test_readme_has_main_ppo_commands():
    assert len(_readme_main_ppo_commands()) >= 2


def _composed(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from verl_helpers import VERL_CONFIG_DIR

    with initialize_config_dir(config_dir=VERL_CONFIG_DIR, version_base=None):
        return compose("ppo_trainer", overrides=overrides)


def test_readme_overrides_compose():
    for overrides in _readme_main_ppo_commands():
        cfg = _composed(overrides)
        if "dupo" in cfg:
            resolve_options({}, cfg)  # every +dupo.<key> is a real DuPO option
        if cfg.actor_rollout_ref.rollout.agent.get("default_agent_loop") == "dupo_agent":
            assert cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path == str(CONFIG_PATH)


def test_readme_frozen_dual_command_keeps_the_reward_model_servers_awake():
    """verl 0.9.1 sleeps reward-model servers when free_cache_engine is set; the streaming path never wakes them."""
    frozen = []
    for overrides in _readme_main_ppo_commands():
        cfg = _composed(overrides)
        if cfg.reward.reward_manager.name == "dupo" and cfg.reward.reward_model.enable:
            frozen.append(cfg)
    assert frozen, "README shows no frozen-dual (reward.reward_manager.name=dupo) command"
    for cfg in frozen:
        assert cfg.reward.reward_model.rollout.free_cache_engine is False
        assert cfg.reward.reward_model.enable_resource_pool is True  # V1 passes dataset columns only then
        assert cfg.reward.custom_reward_function.path  # else verl asks the reward model to /classify
