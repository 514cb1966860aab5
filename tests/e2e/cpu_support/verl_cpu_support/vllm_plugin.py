"""vLLM general plugin: keep CPU linear weights so verl can hot-reload them.

vLLM-CPU's `UnquantizedLinearMethod.process_weights_after_loading` prepacks each linear weight and
replaces the parameter carrying `weight_loader` by an empty one. verl's weight sync then calls
`model.load_weights`, which fails with "'Parameter' object has no attribute 'weight_loader'" (and
main_ppo hangs). Forcing `remove_weight=False` keeps the parameter; verl re-runs
`process_weights_after_loading` after each sync, which packs the new weights again.

Registered under the `vllm.general_plugins` entry-point group, so vLLM runs `register()` in every
one of its processes. Loading it twice is harmless.
"""

from __future__ import annotations

import functools
from typing import Any

_MARK = "_dupo_e2e_keeps_weight"


def keep_weight(dispatch: Any) -> Any:
    """Wrap vLLM's CPU GEMM dispatcher so it never drops the original weight."""
    if getattr(dispatch, _MARK, False):
        return dispatch

    @functools.wraps(dispatch)
    def dispatch_keeping_weight(layer: Any, remove_weight: bool = False, *args: Any, **kwargs: Any) -> Any:
        return dispatch(layer, False, *args, **kwargs)

    setattr(dispatch_keeping_weight, _MARK, True)
    return dispatch_keeping_weight


def register() -> None:
    """Entry point: patch `vllm.model_executor.layers.utils.dispatch_cpu_unquantized_gemm`."""
    from vllm.model_executor.layers import utils

    utils.dispatch_cpu_unquantized_gemm = keep_weight(utils.dispatch_cpu_unquantized_gemm)
