"""Task registry by name; users add tasks from their own package with `register_task`.

A task name read from data selects a registered task only. `module:Class` names resolve only for
modules the person running the job allowed (`allow_task_modules`, the CLI's `--task-module` /
`prepare task --import`, or `DUPO_TASK_MODULES=mod1,mod2` in the environment of every process).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from typing import Any

from dupo_verl.tasks.base import DualTask

_TASKS: dict[str, type[DualTask]] = {}


def register_task(name: str) -> Callable[[type[DualTask]], type[DualTask]]:
    """Class decorator: make a `DualTask` subclass available as `get_task(name)`."""

    def wrap(cls: type[DualTask]) -> type[DualTask]:
        if not (isinstance(cls, type) and issubclass(cls, DualTask)):
            raise TypeError(f"register_task({name!r}): {cls!r:.80} is not a DualTask subclass")
        if not isinstance(name, str) or not name.strip() or ":" in name:
            raise TypeError(f"register_task: a task name is non-blank text without ':', got {name!r:.80}")
        if name in _TASKS and _TASKS[name] is not cls:
            raise ValueError(f"task {name!r} is already registered by {_TASKS[name].__qualname__}")
        cls.name = name
        _TASKS[name] = cls
        return cls

    return wrap


# Modules whose task classes a task name may give as `module:Class`. Data never adds to this: only
# the person running the job does (a CLI flag, `allow_task_modules`, or this environment variable,
# a comma-separated list, which also reaches verl's worker processes through Ray's runtime_env).
TASK_MODULES_ENV = "DUPO_TASK_MODULES"
_ALLOWED_MODULES: set[str] = set()


def allow_task_modules(modules: Iterable[str]) -> None:
    """Import each module (its tasks register) and allow `module:Class` task names from it."""
    for module in modules:
        module = module.strip()
        if module:
            _import_module(module)
            _ALLOWED_MODULES.add(module)


def _import_module(module: str) -> Any:
    """`importlib.import_module`, with any failure of the user's module (a SyntaxError, an error its
    import-time code raises, a `sys.exit()`) as one ImportError naming it: the CLI prints that in one line."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise
    except (Exception, SystemExit) as exc:  # sys.exit() or argparse at import would end the whole job
        raise ImportError(f"importing task module {module!r} failed: {type(exc).__name__}: {exc}") from exc


def allow_hint(module_name: str) -> str:
    """How to allow `module_name`, in each place a job runs (the flags differ per command)."""
    return (
        f"`prepare task --import {module_name}`, `filter`/`rerank --task-module {module_name}`, or "
        f"{TASK_MODULES_ENV}={module_name} in the environment of the training job"
    )


def allowed_task_modules() -> set[str]:
    env = os.environ.get(TASK_MODULES_ENV, "")
    return _ALLOWED_MODULES | {m.strip() for m in env.split(",") if m.strip()}


def get_task(name: str, **params: Any) -> DualTask:
    """Instantiate the task registered as `name`, or `package.module:Class` from an allowed module.

    Task names often come from data (`extra_info["dupo"]["task"]`), so a name never imports a
    module by itself: that would run any installed module's import-time code while reading a file.
    """
    task = task_class(name)(**params)
    task.check_declaration()
    return task


def task_class(name: str) -> type[DualTask]:
    """The class `get_task(name)` would build; KeyError naming the registered tasks when unknown."""
    _load_builtin_tasks()
    if name in _TASKS:
        return _TASKS[name]
    if ":" in name:
        return _import_task(name)
    raise KeyError(f"unknown DuPO task {name!r}; registered: {', '.join(sorted(_TASKS))}")


def _import_task(path: str) -> type[DualTask]:
    """Resolve `package.module:Class` when the person running the job allowed that module."""
    module_name, _, attr = path.partition(":")
    if module_name not in allowed_task_modules():
        raise KeyError(
            f"task {path!r} is not registered and module {module_name!r} is not allowed to be imported; "
            f"registered: {', '.join(sorted(_TASKS))}. To use it, allow the module explicitly ({allow_hint(module_name)})"
        )
    cls = getattr(_import_module(module_name), attr, None)
    if not (isinstance(cls, type) and issubclass(cls, DualTask)):
        raise KeyError(f"{path!r} does not name a DualTask subclass")
    if _TASKS.get(cls.name) is not cls:
        # Not registered under its own name (it may inherit a registered parent's): rows must record
        # the path, or training would rebuild the parent task from them.
        cls.name = path
    return cls


def task_names() -> list[str]:
    _load_builtin_tasks()
    return sorted(_TASKS)


def _load_builtin_tasks() -> None:
    # Imported lazily so that `dupo_verl.plugin` stays cheap to import.
    import dupo_verl.tasks.builtin  # noqa: F401
