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


def test_readme_overrides_compose():
    from hydra import compose, initialize_config_dir
    from verl_helpers import VERL_CONFIG_DIR

    for overrides in _readme_main_ppo_commands():
        with initialize_config_dir(config_dir=VERL_CONFIG_DIR, version_base=None):
            cfg = compose("ppo_trainer", overrides=overrides)
        if "dupo" in cfg:
            resolve_options({}, cfg)  # every +dupo.<key> is a real DuPO option
        if cfg.actor_rollout_ref.rollout.agent.get("default_agent_loop") == "dupo_agent":
            assert cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path == str(CONFIG_PATH)
