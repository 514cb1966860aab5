"""Reading rows for filter and rerank (jsonl, json, parquet) as plain Python values."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROW_FORMATS = (".jsonl", ".json", ".parquet")


def to_plain(value: Any) -> Any:
    """numpy arrays / scalars (what pandas gives for parquet lists) -> lists / Python scalars."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__.startswith("numpy"):
        return to_plain(tolist())
    return value


def read_rows(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """All rows of a jsonl / json (list of objects) / parquet file, at most `limit`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if limit is not None:
            table = table.slice(0, limit)
        rows = table.to_pylist()
    elif suffix == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if limit is not None and len(rows) >= limit:
                    break
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({exc})") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
                rows.append(row)
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"{path}: expected a JSON list of objects")
        rows = data[:limit] if limit is not None else data
    else:
        raise ValueError(f"{path}: unsupported format {suffix!r}; use one of {ROW_FORMATS}")
    return [to_plain(r) for r in rows]


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def row_id(row: Mapping[str, Any], index: int, id_key: str = "id") -> str:
    """A row's id: its `id_key`, else `extra_info.id` / `extra_info.index`, else its position."""
    if row.get(id_key) not in (None, ""):
        return str(row[id_key])
    extra = row.get("extra_info")
    if isinstance(extra, Mapping):
        for key in ("id", "index"):
            if extra.get(key) not in (None, ""):
                return str(extra[key])
    return str(index)
