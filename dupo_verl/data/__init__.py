"""Data adapters: raw records -> DuPO tasks -> verl parquet rows, and `DuPODataset`.

`DuPODataset` is imported lazily (it pulls in verl and torch); the prepare pipeline does not.
"""

from __future__ import annotations

from typing import Any

from dupo_verl.data.prepare import PrepareConfig, build_rows, prepare, split_rows, val_path
from dupo_verl.data.readers import InputError, RawRecord, open_source
from dupo_verl.data.rows import RowOptions, build_row
from dupo_verl.data.summary import PrepareSummary
from dupo_verl.data.writer import rows_to_table, write_rows

__all__ = [
    "DuPODataset",
    "InputError",
    "PrepareConfig",
    "PrepareSummary",
    "RawRecord",
    "RowOptions",
    "build_row",
    "build_rows",
    "open_source",
    "prepare",
    "rows_to_table",
    "split_rows",
    "val_path",
    "write_rows",
]


def __getattr__(name: str) -> Any:
    if name == "DuPODataset":
        from dupo_verl.data.dataset import DuPODataset

        return DuPODataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
