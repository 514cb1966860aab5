"""Imported by `import verl` in every verl process (entry point group `verl.plugins`).

Registers, with verl's own registries:
- agent loop `dupo_agent` (`dupo_verl.verl.agent_loop.DuPOAgentLoop`),
- reward manager `dupo` (`dupo_verl.verl.reward_manager.DuPORewardManager`),
- V1 trainers `dupo_sync`, `dupo_colocate_async`, `dupo_separate_async` (`dupo_verl.verl.trainer`).

Importing those registries here would add seconds and hundreds of MB to every verl process (and
runs while `verl/__init__` is still executing), so each registration waits until verl itself
imports the registry's module: a post-import hook on `sys.meta_path`. This module imports only the
standard library and never raises (verl would swallow the error at debug level).
"""

from __future__ import annotations

import importlib
import importlib.abc
import logging
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

# verl module -> our module whose import registers the DuPO classes with it
REGISTRATIONS: dict[str, str] = {
    "verl.experimental.agent_loop.agent_loop": "dupo_verl.verl.agent_loop",
    "verl.experimental.reward_loop.reward_manager": "dupo_verl.verl.reward_manager",
    "verl.trainer.ppo.v1": "dupo_verl.verl.trainer",
}


def _register(target: str) -> None:
    try:
        importlib.import_module(REGISTRATIONS[target])
    except Exception:  # never break verl: report loudly, keep going
        logger.warning("dupo_verl: registering with %s failed", target, exc_info=True)


class _RunAfterExec(importlib.abc.Loader):
    """Wraps a module's loader to call `after` once the module has executed."""

    def __init__(self, loader: Any, after: Callable[[], None]) -> None:
        self._loader = loader
        self._after = after

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # Put the real loader back first so the module looks untouched (resources, inspect).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._after()


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself; tags the specs of the watched verl modules with `_RunAfterExec`."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in REGISTRATIONS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RunAfterExec(spec.loader, lambda name=fullname: _register(name))
                return spec
        return None


def install() -> None:
    """Register now for modules already imported, and on import for the others (idempotent)."""
    if not any(isinstance(f, _PostImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder())
    for target in REGISTRATIONS:
        if target in sys.modules:
            _register(target)


try:
    install()
except Exception:  # pragma: no cover - defensive: never break `import verl`
    logger.warning("dupo_verl: plugin installation failed", exc_info=True)
