"""Let verl's FSDP2 reference model offload to CPU memory without pinning it.

verl 0.9.1 builds every forward-only FSDP2 model (the reference policy that `use_kl_loss=True`
needs) with `CPUOffloadPolicy(pin_memory=True)`. Pinned memory is page-locked host memory for fast
copies to an accelerator; without one, torch refuses (`pin_memory()`: "Cannot access accelerator
device when none is available"). On a machine without an accelerator the policy is made with
`pin_memory=False`; what is offloaded, and when, is unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch.distributed.fsdp import CPUOffloadPolicy

_MARK = "_dupo_e2e_cpu_offload_fix"


def install() -> None:
    """Wrap `CPUOffloadPolicy.__init__` once per process (verl imports the same class object)."""
    original = CPUOffloadPolicy.__init__
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def __init__(self: CPUOffloadPolicy, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.pin_memory and not torch.accelerator.is_available():
            self.pin_memory = False

    setattr(__init__, _MARK, True)
    CPUOffloadPolicy.__init__ = __init__
