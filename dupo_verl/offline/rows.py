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
    """`extra_info["dupo"]`: the task name, its parameters and the dual questions."""
    extra = row.get("extra_info")
    if not isinstance(extra, Mapping) or not isinstance(extra.get("dupo"), Mapping):
        raise ValueError("field 'extra_info.dupo' is missing (prepare the data with `dupo-verl prepare`)")
    return extra["dupo"]
