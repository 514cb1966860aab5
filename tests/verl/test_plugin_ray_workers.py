"""The plugin loads in Ray worker processes, the way verl's actors on every node import it.

A multi-node cluster cannot be built here; what a node adds is only "another process that runs
`import verl`", which a Ray worker is. One local Ray session runs three workers with different
`runtime_env`s: the installed entry point, `VERL_USE_EXTERNAL_MODULES` passed through Ray's
`runtime_env` (the route for clusters whose nodes get the package another way), and a control with
plugins off that must NOT know DuPO.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROUTES = {
    "entry_point": {"VERL_USE_EXTERNAL_PLUGINS": "auto"},
    "runtime_env_module": {"VERL_USE_EXTERNAL_PLUGINS": "none", "VERL_USE_EXTERNAL_MODULES": "dupo_verl.plugin"},
    "control_off": {"VERL_USE_EXTERNAL_PLUGINS": "none"},
}

RAY_PROBE = r"""
import json, os, sys, ray
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)

@ray.remote
def probe():
    import os, sys
    import verl  # what every verl actor does first
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
    try:
        manager = get_reward_manager_cls("dupo").__qualname__
    except Exception:
        manager = None
    return {"pid": os.getpid(), "plugin": "dupo_verl.plugin" in sys.modules,
            "agent_loop": (_agent_loop_registry.get("dupo_agent") or {}).get("_target_"),
            "reward_manager": manager}

try:
    routes = json.loads(sys.argv[1])
    refs = {name: probe.options(runtime_env={"env_vars": env}).remote() for name, env in routes.items()}
    result = {name: ray.get(ref, timeout=300) for name, ref in refs.items()}
    result["driver_pid"] = os.getpid()
    print("STATE" + json.dumps(result))
finally:
    ray.shutdown()
"""


@pytest.fixture(scope="module")
def worker_states() -> dict:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", RAY_PROBE, json.dumps(ROUTES)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("STATE"))
    return json.loads(line[len("STATE") :])


@pytest.mark.slow
@pytest.mark.parametrize("route", ["entry_point", "runtime_env_module"])
def test_ray_worker_registers_dupo(worker_states, route):
    state = worker_states[route]
    assert state["pid"] != worker_states["driver_pid"]  # it really ran in a Ray worker process
    assert state["plugin"] is True
    assert state["agent_loop"] == "dupo_verl.verl.agent_loop.DuPOAgentLoop"
    assert state["reward_manager"] == "DuPORewardManager"


@pytest.mark.slow
def test_ray_worker_with_plugins_off_does_not_know_dupo(worker_states):
    state = worker_states["control_off"]
    assert state["plugin"] is False
    assert state["agent_loop"] is None
    assert state["reward_manager"] is None
