"""The `torch.<device>` namespace verl gets from the CPU platform (`get_torch_device()`).

verl calls CUDA-style functions on it (empty_cache, synchronize, mem_get_info, memory stats, RNG
state, streams). On CPU those are no-ops, host-memory figures or `torch.cpu` equivalents. Anything
not defined here falls through to `torch.cpu`.
"""

from __future__ import annotations

from typing import Any

import psutil
import torch


def __getattr__(name: str) -> Any:
    return getattr(torch.cpu, name)


def is_available() -> bool:
    return True


def device_count() -> int:
    return 1


def current_device() -> str:
    # verl turns the id into a torch device; 0 would mean cuda:0.
    return "cpu"


def set_device(device: Any = None) -> None:
    return None


def synchronize(device: Any = None) -> None:
    return None


def empty_cache() -> None:
    return None


def ipc_collect() -> None:
    return None


def set_per_process_memory_fraction(fraction: float, device: Any = None) -> None:
    return None


def get_device_name(device: Any = None) -> str:
    return "cpu"


def mem_get_info(device: Any = None) -> tuple[int, int]:
    vm = psutil.virtual_memory()
    return int(vm.available), int(vm.total)


def memory_allocated(device: Any = None) -> int:
    return 0


def memory_reserved(device: Any = None) -> int:
    return 0


def max_memory_allocated(device: Any = None) -> int:
    return 0


def max_memory_reserved(device: Any = None) -> int:
    return 0


def reset_peak_memory_stats(device: Any = None) -> None:
    return None


def memory_stats(device: Any = None) -> dict[str, int]:
    return {}


def get_rng_state(device: Any = None) -> torch.Tensor:
    return torch.get_rng_state()


def set_rng_state(state: torch.Tensor, device: Any = None) -> None:
    torch.set_rng_state(state)


def manual_seed(seed: int) -> None:
    torch.manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    torch.manual_seed(seed)


Stream = torch.cpu.Stream
Event = torch.cpu.Event
stream = torch.cpu.stream
current_stream = torch.cpu.current_stream
