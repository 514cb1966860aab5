"""Reading rows for filter and rerank (jsonl, json, parquet) as plain Python values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dupo_verl.data.readers import load_json_rows
from dupo_verl.plain import to_plain

ROW_FORMATS = (".jsonl", ".json", ".parquet")
TOO_DEEP = "nested too deeply to read (a row's lists and objects may nest a few hundred levels at most)"


def read_rows(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """All rows of a jsonl / json (list of objects) / parquet file, at most `limit`."""
    return read_placed_rows(path, limit)[0]


def read_placed_rows(path: str | Path, limit: int | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """`read_rows`, plus where each row is (`file:line` for jsonl, `file: row N` otherwise), so an
    error about a row can name its line."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"input {path} is a directory, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"{path}: not a readable parquet file ({exc})") from None
        if limit is not None:
            table = table.slice(0, limit)
        rows = table.to_pylist()
        where = [f"{path}: row {i}" for i in range(1, len(rows) + 1)]
    elif suffix == ".jsonl":
        rows, where = [], []
        with path.open("rb") as fh:  # binary lines end at "\n" only, never at U+2028 or U+0085
            for lineno, raw in enumerate(fh, 1):
                if limit is not None and len(rows) >= limit:
                    break
                if not raw.strip():
                    continue
                try:
                    row = json.loads(_text(raw, lineno == 1))
                except UnicodeDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: not UTF-8 (byte at column {exc.start + 1})") from None
                except ValueError as exc:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({exc})") from None
                except RecursionError:
                    raise ValueError(f"{path}:{lineno}: {TOO_DEEP}") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
                rows.append(row)
                where.append(f"{path}:{lineno}")
    elif suffix == ".json":
        data = load_json_rows(path)
        if data is None or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"{path}: expected a JSON list of objects (or an object holding one such list)")
        rows = data[:limit] if limit is not None else data
        where = [f"{path}: row {i}" for i in range(1, len(rows) + 1)]
    else:
        raise ValueError(f"{path}: unsupported format {suffix!r}; use one of {ROW_FORMATS}")
    plain = []
    for row, place in zip(rows, where, strict=True):
        try:
            plain.append(to_plain(row))
        except RecursionError:  # parsed, but too deep for the code that walks it later
            raise ValueError(f"{place}: {TOO_DEEP}") from None
    return plain, where


def _text(data: bytes, first: bool) -> str:
    """UTF-8 text of a file's bytes (a BOM at the start of the file dropped)."""
    if first and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8")


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


def row_digest(row: Mapping[str, Any]) -> str:
    """A short hash of a row's content: `--resume` checks that the rows already done came from this input
    (ids that fall back to row positions say nothing about content)."""
    text = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
