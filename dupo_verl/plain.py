"""Plain Python values from what configs and parquet readers hand over.

OmegaConf containers (Hydra configs), numpy arrays and numpy scalars (pandas / `datasets` give them
for parquet lists) become dicts, lists and Python scalars, so JSON, equality and `isinstance`
checks behave. One implementation for data, offline, verl glue and demo code.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

_SCALARS = frozenset({str, int, float, bool, bytes})


def to_plain(value: Any) -> Any:
    """`value` with every mapping, sequence and numpy value turned into dict / list / scalar.

    >>> to_plain({"a": (1, 2), "b": [{"c": None}]})
    {'a': [1, 2], 'b': [{'c': None}]}
    """
    if value is None or type(value) in _SCALARS:  # the common case first: parquet rows are mostly these
        return value
    omegaconf = sys.modules.get("omegaconf")  # a config can only be one if omegaconf is loaded
    if omegaconf is not None and omegaconf.OmegaConf.is_config(value):
        return omegaconf.OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__.startswith("numpy"):
        return to_plain(tolist())
    return value
