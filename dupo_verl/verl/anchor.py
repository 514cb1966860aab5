"""Wiring of the anchored judge (`+dupo.judge=anchored`) through verl's own agent and reward loops.

The live self-dual needs the policy's rollout servers, which only the agent loop holds; the frozen
judge needs the reward-model router, which verl hands only to the reward manager. So `dupo_agent`
judges with the live policy, puts that verdict in the sample's `extra_fields` and leaves
`reward_score` unset; verl then runs its reward loop, where the `dupo` reward manager asks the
frozen copy and combines both (`dupo_verl.scoring.anchored_reward`). No verl file is patched:
verl forwards `extra_fields` to the reward loop as `tool_extra_fields` (streaming reward) or as a
batch column (reward computed after the rollout).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from dupo_verl.scoring import DualOptions
from dupo_verl.verl.rows import rollout_agent
from dupo_verl.verl.startup import first_row_not_rolled_out_by

# The live judge's metrics in a sample's `extra_fields` (and so in the reward loop's batch).
LIVE_JUDGE_FIELD = "dupo_live_judge"


def require_anchor(config: Any) -> None:
    """Fail at start-up when the anchored judge has no frozen judge to ask (one line naming the settings).

    Each setting's type is checked first: `bool("false")` is True, so a quoted `enable` would pass.
    """
    reward = _section(config, "reward", "reward")
    manager = _section(reward, "reward_manager", "reward.reward_manager").get("name")
    enabled = _section(reward, "reward_model", "reward.reward_model").get("enable")
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(
            "dupo.judge=anchored: reward.reward_model.enable must be true or false (unquoted), "
            f"got {type(enabled).__name__} {enabled!r:.60}"
        )
    if manager != "dupo" or not enabled:
        raise ValueError(
            "dupo.judge=anchored needs the frozen judge: set reward.reward_manager.name=dupo, "
            "reward.reward_model.enable=True and reward.reward_model.model_path=<the starting policy> "
            f"(got reward_manager.name={manager!r}, reward_model.enable={enabled})"
        )


def require_live_judge(config: Any) -> None:
    """Fail at start-up (the `dupo` reward manager's) when a row the anchored judge scores is not
    rolled out by `dupo_agent`: it would carry no live verdict, found only at its first score."""
    default_agent = rollout_agent(config).get("default_agent_loop")
    where = first_row_not_rolled_out_by("dupo_agent", config.get("data"), default_agent)
    if where is not None:
        raise ValueError(
            f"dupo.judge=anchored: {where} is not rolled out by dupo_agent, so it would have no live verdict; "
            "set actor_rollout_ref.rollout.agent.default_agent_loop=dupo_agent (and no other agent_name in the data)"
        )


def _section(config: Any, key: str, where: str) -> Mapping[str, Any]:
    """`config[key]` as a mapping ({} when unset), or one line naming `where` when it is not one."""
    section = config.get(key) or {}
    if not isinstance(section, Mapping):
        raise ValueError(
            f"dupo.judge=anchored: {where} must be a mapping of settings (the frozen judge needs "
            f"reward.reward_manager.name=dupo and reward.reward_model.enable=True), "
            f"got {type(section).__name__} {section!r:.60}"
        )
    return section


def live_verdict(metrics: Mapping[str, float], options: DualOptions) -> dict[str, Any]:
    """What `dupo_agent` leaves for the reward loop: its metrics and the options it judged with, so
    the frozen judge asks the same questions the same way (the agent-loop YAML's options included)."""
    return {"metrics": {k: float(v) for k, v in metrics.items()}, "options": asdict(options)}


def read_live_verdict(non_tensor: Mapping[str, Any]) -> tuple[dict[str, float], DualOptions] | None:
    """The live verdict of one sample of a reward-loop batch (metrics, options), or None when absent."""
    candidates = [non_tensor.get(LIVE_JUDGE_FIELD)]
    tool_fields = non_tensor.get("tool_extra_fields")
    if tool_fields is not None:
        fields = tool_fields.item() if getattr(tool_fields, "shape", None) == () else tool_fields
        if isinstance(fields, Mapping):
            candidates.append(fields.get(LIVE_JUDGE_FIELD))
    for value in candidates:
        if getattr(value, "shape", None) == ():
            value = value.item()
        if isinstance(value, Mapping) and isinstance(value.get("metrics"), Mapping):
            metrics = {str(k): float(v) for k, v in value["metrics"].items()}
            return metrics, DualOptions.from_mapping(value.get("options") or {})
    return None
