"""Read raw records from jsonl, json, parquet, csv/tsv, plain text or a saved `datasets` folder.

Every input row becomes one `RawRecord`, either with its data or with the reason it could not be
read (a broken JSON line, a line that is not an object), so the caller can count it instead of
crashing. Problems with the file itself (missing, unknown format) raise `InputError` at once.
"""

from __future__ import annotations

import csv
import json
import re
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
        if p.is_symlink():  # a dangling link or a loop, not a missing name
            raise InputError(f"input {p} is a symbolic link that leads to no file (dangling or a loop)")
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
        rows = load_json_rows(p)
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


BOM = b"\xef\xbb\xbf"


def _decode(line: bytes, where: str) -> tuple[str | None, tuple[str, str] | None]:
    """A line's text, or the `bad_encoding` skip naming where the first bad byte is."""
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        byte = line[exc.start : exc.start + 1].hex()
        return None, ("bad_encoding", f"{where}: not UTF-8 (byte 0x{byte} at column {exc.start + 1})")


def _byte_lines(path: Path) -> Iterator[bytes]:
    """The file's records: split on "\n" only (never on U+2028, form feed or U+0085), a leading
    UTF-8 BOM dropped, a trailing "\r" kept for the caller's strip."""
    with path.open("rb") as f:
        for line_no, line in enumerate(f, 1):  # binary iteration splits on b"\n" alone
            if line_no == 1 and line.startswith(BOM):
                line = line[len(BOM) :]
            yield line


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    index = 0
    for line_no, raw in enumerate(_byte_lines(path), 1):
        if not raw.strip():
            continue
        where = f"{path.name}:{line_no}"
        line, error = _decode(raw, where)
        if error is not None:
            yield RawRecord(index, error=error)
            index += 1
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRecord(index, error=("bad_json", f"{where}: {exc.msg}"))
        except (RecursionError, ValueError) as exc:  # nested too deeply; an integer too long to convert
            yield RawRecord(index, error=("bad_json", f"{where}: {_unreadable(exc)}"))
        else:
            if isinstance(row, dict):
                yield RawRecord(index, data=row)
            else:
                yield RawRecord(index, error=("not_an_object", f"{where} is not a JSON object"))
        index += 1


def _unreadable(exc: RecursionError | ValueError) -> str:
    """Why valid-looking JSON could not be read, in one short line."""
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply to read"
    return str(exc).split(";")[0]  # e.g. "Exceeds the limit (4300 digits) for integer string conversion..."


def load_json_rows(path: Path) -> list[Any] | None:
    """The rows of a JSON file (a list, or an object holding one list); None for JSON lines.

    Shared by `prepare` and the offline tools (filter, rerank), so both accept the same files."""
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start : exc.start + 1].hex()} at offset {exc.start})"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return None
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    except (RecursionError, ValueError) as exc:
        raise InputError(f"{path}: {_unreadable(exc)}") from None
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
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable parquet file ({exc})") from None

    def rows() -> Iterator[RawRecord]:
        index = 0
        try:
            for batch in table.iter_batches(batch_size=4096):
                for row in batch.to_pylist():
                    yield RawRecord(index, data=row)
                    index += 1
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: parquet data is corrupt after row {index} ({exc})") from None

    return Source(rows(), table.metadata.num_rows, stem)


_SURROGATE = re.compile("[\udc80-\udcff]")  # what `surrogateescape` makes of a non-UTF-8 byte


def _read_csv(path: Path, delimiter: str) -> Iterator[RawRecord]:
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # a long problem is one cell
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            header = reader.fieldnames or []
        except csv.Error as exc:
            raise InputError(f"{path}: unreadable header ({exc})") from None
        if any(_SURROGATE.search(name) for name in header):
            raise InputError(f"{path}: the header line is not UTF-8")
        i = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RawRecord(i, error=("bad_csv_row", f"row {i} ({path.name} line {reader.line_num}): {exc}"))
                i += 1
                continue
            if None in row:  # more cells than header columns
                yield RawRecord(
                    i, error=("bad_csv_row", f"row {i} ({path.name} line {reader.line_num}) has more cells than columns")
                )
            elif any(isinstance(v, str) and _SURROGATE.search(v) for v in row.values()):
                yield RawRecord(i, error=("bad_encoding", f"row {i} ({path.name} line {reader.line_num}): not UTF-8"))
            else:
                yield RawRecord(i, data=dict(row))
            i += 1


def _read_lines(path: Path) -> list[tuple[str | None, tuple[str, str] | None]]:
    """Each "\n"-delimited line of a text file, decoded, or the reason it could not be."""
    return [_decode(line.rstrip(b"\n"), f"{path.name}:{n}") for n, line in enumerate(_byte_lines(path), 1)]


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
            parts = [lines[i] for i in group] + ([refs[i] for i in group] if refs is not None else [])
            error = next((e for _, e in parts if e is not None), None)
            if error is not None:
                yield RawRecord(index, error=error)
                continue
            record = {TEXT_KEY: " ".join(lines[i][0].strip() for i in group)}
            if refs is not None:
                record["reference"] = " ".join(refs[i][0].strip() for i in group)
            yield RawRecord(index, data=record)

    return Source(rows(), len(groups), stem)


def _read_saved_dataset(path: Path, split: str | None, stem: str) -> Source:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise InputError(f"{path} is not a dataset saved with `datasets.save_to_disk` ({exc})") from exc
    except Exception as exc:  # a damaged save: datasets raises KeyError('_data_files'), JSON errors, ...
        raise InputError(
            f"{path} is a damaged `datasets.save_to_disk` folder: {type(exc).__name__}: {exc}"
        ) from exc
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
