"""Reading the fields of a prepared (verl-format) row, with errors that name the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def chat_messages(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """The row's primal chat prompt as plain `{role, content}` dicts."""
    prompt = row.get("prompt")
    if not isinstance(prompt, list) or not prompt:
        raise ValueError("field 'prompt' must be a non-empty list of chat messages")
    messages = []
    for i, message in enumerate(prompt):
        if (
            not isinstance(message, Mapping)
            or not isinstance(message.get("content"), str)
            or not message.get("role")
        ):
            raise ValueError(f"field 'prompt'[{i}] must be a {{role, content}} message")
        messages.append({"role": str(message["role"]), "content": message["content"]})
    return messages


def dupo_info(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """`extra_info["dupo"]`: the task name, its parameters and the dual questions.

    The shapes are checked here so a malformed field is named (`params` given as a JSON string would
    otherwise surface as a bare "dictionary update sequence" message).
    """
    extra = row.get("extra_info")
    if not isinstance(extra, Mapping) or not isinstance(extra.get("dupo"), Mapping):
        raise ValueError("field 'extra_info.dupo' is missing (prepare the data with `dupo-verl prepare`)")
    info = extra["dupo"]
    if not isinstance(info.get("task"), str) or not info["task"]:
        raise ValueError(f"field 'extra_info.dupo.task' must be a task name, got {_shown(info.get('task'))}")
    params = info.get("params")
    if params is not None and not isinstance(params, Mapping):
        raise ValueError(f"field 'extra_info.dupo.params' must be an object, got {_shown(params)}")
    duals = info.get("duals")
    if duals is not None and not isinstance(duals, list):
        raise ValueError(f"field 'extra_info.dupo.duals' must be a list of objects, got {_shown(duals)}")
    for i, dual in enumerate(duals or []):
        if not isinstance(dual, Mapping):
            raise ValueError(f"field 'extra_info.dupo.duals'[{i}] must be an object, got {_shown(dual)}")
    return info


def _shown(value: Any) -> str:
    """A value's type and a short repr, for error messages."""
    return f"{type(value).__name__} {value!r:.60}"
