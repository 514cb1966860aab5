"""CPU support for verl 0.9.1 end-to-end tests (never shipped in `dupo_verl`).

Imported in every verl process through `VERL_USE_EXTERNAL_MODULES=verl_cpu_support`. When
`VERL_PLATFORM=cpu` it registers the `cpu` platform in verl's platform registry, fixes the
process-group backend string verl builds for it and lets FSDP2 offload the reference model without
pinned memory; otherwise importing it changes nothing.
"""

from __future__ import annotations

import os

PLATFORM_NAME = "cpu"


def cpu_platform_selected() -> bool:
    """True when this process was told to run verl on the CPU platform."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


def install() -> None:
    """Register the CPU platform and the backend fix; idempotent."""
    from verl_cpu_support import offload, platform, process_group

    platform.register()
    process_group.install()
    offload.install()


if cpu_platform_selected():
    install()
