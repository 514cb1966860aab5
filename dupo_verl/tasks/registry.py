"""Task registry by name; users add tasks from their own package with `register_task`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from dupo_verl.tasks.base import DualTask

_TASKS: dict[str, type[DualTask]] = {}


def register_task(name: str) -> Callable[[type[DualTask]], type[DualTask]]:
    """Class decorator: make a `DualTask` subclass available as `get_task(name)`."""

    def wrap(cls: type[DualTask]) -> type[DualTask]:
        if name in _TASKS and _TASKS[name] is not cls:
            raise ValueError(f"task {name!r} is already registered by {_TASKS[name].__qualname__}")
        cls.name = name
        _TASKS[name] = cls
        return cls

    return wrap


def get_task(name: str, **params: Any) -> DualTask:
    """Instantiate the task registered as `name` (or given as `package.module:Class`)."""
    _load_builtin_tasks()
    if ":" in name and name not in _TASKS:
        return _import_task(name)(**params)
    try:
        cls = _TASKS[name]
    except KeyError:
        raise KeyError(f"unknown DuPO task {name!r}; registered: {sorted(_TASKS)}") from None
    return cls(**params)


def _import_task(path: str) -> type[DualTask]:
    """Resolve `package.module:Class`, so user tasks work in every verl process without a plugin."""
    module_name, _, attr = path.partition(":")
    cls = getattr(importlib.import_module(module_name), attr, None)
    if not (isinstance(cls, type) and issubclass(cls, DualTask)):
        raise KeyError(f"{path!r} does not name a DualTask subclass")
    return cls


def task_names() -> list[str]:
    _load_builtin_tasks()
    return sorted(_TASKS)


def _load_builtin_tasks() -> None:
    # Imported lazily so that `dupo_verl.plugin` stays cheap to import.
    import dupo_verl.tasks.builtin  # noqa: F401
