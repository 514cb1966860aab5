"""Read raw records from jsonl, json, parquet, csv/tsv, plain text or a saved `datasets` folder.

Every input row becomes one `RawRecord`, either with its data or with the reason it could not be
read (a broken JSON line, a line that is not an object), so the caller can count it instead of
crashing. Problems with the file itself (missing, unknown format) raise `InputError` at once.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("jsonl", "json", "parquet", "csv", "tsv", "txt", "datasets")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "txt",
}
TEXT_KEY = "text"  # the field of a plain-text line


class InputError(ValueError):
    """The input as a whole cannot be read (missing, unknown format, misaligned files)."""


@dataclass(frozen=True)
class RawRecord:
    """Row `index` (0-based, input order): its fields, or `error` = (reason, message)."""

    index: int
    data: dict[str, Any] | None = None
    error: tuple[str, str] | None = None


@dataclass(frozen=True)
class Source:
    """An opened input: its records and, when known in advance, how many there are."""

    records: Iterator[RawRecord]
    total: int | None
    stem: str


def detect_format(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir():
        return "datasets"
    fmt = _SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"{p}: unknown input format {p.suffix!r}; use one of {', '.join(FORMATS)}")
    return fmt


def open_source(
    path: str | Path,
    fmt: str | None = None,
    split: str | None = None,
    lines_per_record: int = 1,
    reference: str | Path | None = None,
) -> Source:
    """Open `path` for reading. Plain text: one record {"text": line} per line (or per
    `lines_per_record` consecutive lines joined by a space); `reference`: a line-aligned text
    file whose lines become the records' "reference" field. `split` picks a `datasets` split."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"input not found: {p}")
    fmt = fmt or detect_format(p)
    if reference is not None and fmt != "txt":
        raise InputError(
            "a separate reference file goes with plain-text input only; for other formats name the column"
        )
    if lines_per_record != 1 and fmt != "txt":
        raise InputError("lines_per_record applies to plain-text input only")
    stem = p.name if p.is_dir() else p.stem
    if fmt == "jsonl":
        return Source(_read_jsonl(p), None, stem)
    if fmt == "json":
        rows = _load_json(p)
        if rows is None:  # JSON lines saved with a .json suffix (as `datasets` does)
            return Source(_read_jsonl(p), None, stem)
        return Source(_objects(rows), len(rows), stem)
    if fmt == "parquet":
        return _read_parquet(p, stem)
    if fmt in ("csv", "tsv"):
        return Source(_read_csv(p, "\t" if fmt == "tsv" else ","), None, stem)
    if fmt == "txt":
        return _read_text(p, lines_per_record, reference, stem)
    if fmt == "datasets":
        return _read_saved_dataset(p, split, stem)
    raise InputError(f"unknown input format {fmt!r}; use one of {', '.join(FORMATS)}")


def _objects(rows: list[Any]) -> Iterator[RawRecord]:
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            yield RawRecord(i, data=row)
        else:
            yield RawRecord(i, error=("not_an_object", f"row {i} is a {type(row).__name__}, not an object"))


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    index = 0
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RawRecord(index, error=("bad_json", f"{path.name}:{line_no}: {exc.msg}"))
            else:
                if isinstance(row, dict):
                    yield RawRecord(index, data=row)
                else:
                    yield RawRecord(
                        index, error=("not_an_object", f"{path.name}:{line_no} is not a JSON object")
                    )
            index += 1


def _load_json(path: Path) -> list[Any] | None:
    """The rows of a JSON file (a list, or an object holding one list); None for JSON lines."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return None
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise InputError(
                f"{path}: a JSON object must hold exactly one list of rows (e.g. {{'data': [...]}})"
            )
        data = lists[0]
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of objects")
    return data


def _read_parquet(path: Path, stem: str) -> Source:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)

    def rows() -> Iterator[RawRecord]:
        index = 0
        for batch in table.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                yield RawRecord(index, data=row)
                index += 1

    return Source(rows(), table.metadata.num_rows, stem)


def _read_csv(path: Path, delimiter: str) -> Iterator[RawRecord]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        for i, row in enumerate(reader):
            if None in row:  # more cells than header columns
                yield RawRecord(
                    i, error=("bad_csv_row", f"{path.name} row {i + 1} has more cells than columns")
                )
            else:
                yield RawRecord(i, data=dict(row))


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _read_text(path: Path, lines_per_record: int, reference: str | Path | None, stem: str) -> Source:
    if lines_per_record < 1:
        raise InputError(f"lines_per_record must be >= 1, got {lines_per_record}")
    lines = _read_lines(path)
    refs = None
    if reference is not None:
        ref_path = Path(reference)
        if not ref_path.is_file():
            raise InputError(f"reference file not found: {ref_path}")
        refs = _read_lines(ref_path)
        if len(refs) != len(lines):
            raise InputError(
                f"{path} has {len(lines)} lines but reference {ref_path} has {len(refs)}: not aligned"
            )
    groups = [range(i, min(i + lines_per_record, len(lines))) for i in range(0, len(lines), lines_per_record)]

    def rows() -> Iterator[RawRecord]:
        for index, group in enumerate(groups):
            record = {TEXT_KEY: " ".join(lines[i].strip() for i in group)}
            if refs is not None:
                record["reference"] = " ".join(refs[i].strip() for i in group)
            yield RawRecord(index, data=record)

    return Source(rows(), len(groups), stem)


def _read_saved_dataset(path: Path, split: str | None, stem: str) -> Source:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise InputError(f"{path} is not a dataset saved with `datasets.save_to_disk` ({exc})") from exc
    if isinstance(loaded, datasets.DatasetDict):
        names = sorted(loaded)
        chosen = split or ("train" if "train" in loaded else (names[0] if len(names) == 1 else None))
        if chosen not in loaded:
            raise InputError(f"{path} holds splits {names}; pick one with --split")
        loaded = loaded[chosen]
    elif split is not None and str(loaded.split) != split:
        raise InputError(f"{path} is a single dataset (split {loaded.split}), not {split!r}; drop --split")

    def rows() -> Iterator[RawRecord]:
        for start in range(0, len(loaded), 4096):
            batch = loaded[start : start + 4096]
            columns = list(batch)
            for offset, values in enumerate(zip(*(batch[c] for c in columns), strict=True)):
                yield RawRecord(start + offset, data=dict(zip(columns, values, strict=True)))

    return Source(rows(), len(loaded), stem)
