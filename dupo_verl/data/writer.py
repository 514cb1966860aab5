"""Write rows as parquet (one schema for every row of a file) and JSON, atomically.

A reader never sees a half-written file: we write a temporary file in the target folder and
rename it over the target. The schema is built explicitly where inference could go wrong (a file
whose rows have no dual questions would otherwise get a `list<null>` column), so every file of a
task has the same column types. Same rows in, same bytes out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dupo_verl.files import atomic_write

DUAL_TYPE = pa.struct(
    [
        pa.field("masked_text", pa.string()),
        pa.field("variable", pa.string()),
        pa.field("value", pa.string()),
        pa.field("template", pa.int64()),
    ]
)
MESSAGES_TYPE = pa.list_(pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())]))
REWARD_MODEL_TYPE = pa.struct([pa.field("style", pa.string()), pa.field("ground_truth", pa.string())])


def _extra_info_type(infos: Sequence[dict[str, Any]]) -> pa.DataType:
    """`extra_info` as inferred from all rows, with the fixed parts pinned."""
    inferred = pa.infer_type(list(infos))
    fields = []
    for f in inferred:
        if f.name == "dupo":
            parts = [pa.field("duals", pa.list_(DUAL_TYPE)) if g.name == "duals" else g for g in f.type]
            f = pa.field("dupo", pa.struct(parts))
        elif f.name == "index":
            f = pa.field("index", pa.int64())
        elif f.name in ("split", "id"):
            f = pa.field(f.name, pa.string())
        fields.append(f)
    return pa.struct(fields)


def rows_to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """A table in verl's row layout (see `dupo_verl.data.rows`)."""
    if not rows:
        raise ValueError("no rows to write")
    schema = pa.schema(
        [
            pa.field("data_source", pa.string()),
            pa.field("prompt", MESSAGES_TYPE),
            pa.field("ability", pa.string()),
            pa.field("reward_model", REWARD_MODEL_TYPE),
            pa.field("extra_info", _extra_info_type([r["extra_info"] for r in rows])),
            pa.field("agent_name", pa.string()),
        ]
    )
    return pa.Table.from_pylist(list(rows), schema=schema)


def write_parquet(table: pa.Table, path: str | Path) -> None:
    """Write `table` to `path` atomically."""
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    write_parquet(rows_to_table(rows), path)


def write_json(obj: Any, path: str | Path) -> None:
    """Write `obj` as indented UTF-8 JSON atomically."""

    def dump(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=2)
            f.write("\n")

    atomic_write(path, dump)
