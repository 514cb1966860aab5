"""How a task reads raw records: the optional hooks the data adapters use (no verl import).

`DualTask` itself only sees a canonical `example` mapping. The adapters in `dupo_verl.data` build
that mapping from a raw record with the task's `input_fields` (field name -> default column), and
ask the task for the row's ground truth, extra `extra_info` keys and `data_source`. A task that defines none of
these hooks gets the raw record as its example, `record["answer"]` (or "") as ground truth and no
extra keys, so a user task needs nothing beyond the `DualTask` methods.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InputField:
    """One field of a task's example. `key`: default column in raw records (None: not read unless
    the user names one). `kind`: "text" (non-empty string) or "int" (integer, also as a string)."""

    key: str | None
    required: bool = True
    kind: str = "text"


def input_fields(task: Any) -> dict[str, InputField] | None:
    """The task's declared fields, or None when it takes raw records as they are."""
    fields = getattr(task, "input_fields", None)
    return dict(fields) if fields else None


def ground_truth(task: Any, example: Mapping[str, Any]) -> str:
    """The gold label written to `reward_model.ground_truth` ("" when there is none)."""
    hook = getattr(task, "ground_truth", None)
    value = hook(example) if callable(hook) else example.get("answer")
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)  # 0 is a gold answer (`or ""` lost it)
    raise TypeError(
        f"task {getattr(task, 'name', '?')!r}: the gold label must be text, a finite number or None, "
        f"got {type(value).__name__} {value!r:.60}"
    )


def row_extra_info(task: Any, example: Mapping[str, Any]) -> dict[str, Any]:
    """Task-specific `extra_info` keys (translation: languages and the reference)."""
    hook = getattr(task, "row_extra_info", None)
    return dict(hook(example)) if callable(hook) else {}


def data_source(task: Any, stem: str) -> str:
    """The rows' `data_source` (verl logs validation metrics per data source): the task's
    `data_source(stem)` hook, else "dupo/<task>/<input file stem>"."""
    hook = getattr(task, "data_source", None)
    if not callable(hook):
        return f"dupo/{task.name}/{stem}"
    value = hook(stem)
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"task {task.name!r}: data_source() must return non-blank text, got {type(value).__name__} {value!r:.60}")
    return value
