"""The `verl.plugins` entry point: a fresh `import verl` registers DuPO's names, cheaply and safely."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from dupo_verl import plugin

PROBE = r"""
import json, sys
import verl
state = {"plugin": "dupo_verl.plugin" in sys.modules,
         "eager": sorted(m for m in sys.modules if m.startswith("dupo_verl.verl"))}
if "--registries" in sys.argv:
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
    state["agent_loop"] = _agent_loop_registry.get("dupo_agent")
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
    from verl.trainer.ppo.v1 import get_trainer_cls
    state["reward_manager"] = get_reward_manager_cls("dupo").__qualname__
    state["trainers"] = {m: [c.__qualname__ for c in get_trainer_cls(m).__mro__[:3]]
                         for m in ("dupo_sync", "dupo_colocate_async", "dupo_separate_async")}
print("STATE" + json.dumps(state))
"""


def _probe(*args: str, **env: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("STATE"))
    return json.loads(line[len("STATE") :])


@pytest.mark.slow
def test_fresh_import_verl_registers_every_name_lazily():
    state = _probe("--registries", VERL_USE_EXTERNAL_PLUGINS="auto")
    assert state["plugin"] is True
    assert state["eager"] == []  # `import verl` alone imports none of the glue
    assert state["agent_loop"] == {"_target_": "dupo_verl.verl.agent_loop.DuPOAgentLoop"}
    assert state["reward_manager"] == "DuPORewardManager"
    assert state["trainers"] == {
        "dupo_sync": ["DuPOTrainerSync", "_DuPOMetricsMixin", "PPOTrainerSync"],
        "dupo_colocate_async": ["DuPOTrainerColocateAsync", "_DuPOMetricsMixin", "PPOTrainerColocateAsync"],
        "dupo_separate_async": ["DuPOTrainerSeparateAsync", "_DuPOMetricsMixin", "PPOTrainerSeparateAsync"],
    }


@pytest.mark.slow
def test_the_plugin_is_loaded_by_the_entry_point():
    assert _probe(VERL_USE_EXTERNAL_PLUGINS="none")["plugin"] is False


def test_a_failing_registration_is_logged_not_raised(monkeypatch, caplog):
    monkeypatch.setitem(plugin.REGISTRATIONS, "verl.some_module", "dupo_verl.no_such_module")
    with caplog.at_level(logging.WARNING, logger="dupo_verl.plugin"):
        plugin._register("verl.some_module")
    assert "registering with verl.some_module failed" in caplog.text
