"""`dupo-verl agent-loop-config`: print the absolute path of the shipped agent-loop YAML.

verl's `agent_loop_config_path` takes a file path (not `pkg://`), so scripts use
`actor_rollout_ref.rollout.agent.agent_loop_config_path=$(dupo-verl agent-loop-config)`.
The file's `dupo_agent` entry holds the DuPO options under its `dupo:` key (copy the file to change
them, or override one with `+dupo.<key>=<value>`); its other keys are verl's own.
"""

from __future__ import annotations

import argparse
from pathlib import Path

CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "dupo_agent_loop.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "agent-loop-config",
        help="print the absolute path of the DuPO agent-loop YAML (for agent_loop_config_path; options under dupo:)",
        description=__doc__,
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not CONFIG_PATH.is_file():
        raise SystemExit(f"dupo-verl: packaged config missing at {CONFIG_PATH}; reinstall dupo-verl")
    print(CONFIG_PATH)
    return 0
