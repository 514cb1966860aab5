"""Make verl's process-group backend string valid on the CPU platform.

verl asks `torch.distributed.init_process_group` for `f"cpu:gloo,{device}:{backend}"`, which on
this platform is `"cpu:gloo,cpu:gloo"`; torch rejects a device type named twice. Any backend
string whose every entry is `cpu:gloo` is replaced by plain `"gloo"`; everything else passes
through unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

import torch.distributed as dist

_MARK = "_dupo_e2e_cpu_backend_fix"


def normalize_backend(backend: Any) -> Any:
    """`"cpu:gloo,cpu:gloo"` -> `"gloo"`; other values unchanged."""
    if not isinstance(backend, str) or "," not in backend:
        return backend
    entries = {part.strip().lower() for part in backend.split(",") if part.strip()}
    return "gloo" if entries == {"cpu:gloo"} else backend


def install() -> None:
    """Wrap `torch.distributed.init_process_group` once per process."""
    original = dist.init_process_group
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def init_process_group(*args: Any, **kwargs: Any) -> Any:
        if "backend" in kwargs:
            kwargs["backend"] = normalize_backend(kwargs["backend"])
        elif args:
            args = (normalize_backend(args[0]), *args[1:])
        return original(*args, **kwargs)

    setattr(init_process_group, _MARK, True)
    dist.init_process_group = init_process_group
