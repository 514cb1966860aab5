"""Append-only jsonl output that survives being killed: the basis of `--resume`.

Every row is one line, written, flushed and fsynced before the next. A run killed mid-write leaves
at most one partial last line; resuming cuts it off and keeps every complete row, so the finished
file is byte-identical to an uninterrupted run's (given deterministic rows).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any


def dumps_row(row: dict[str, Any]) -> str:
    """The one serialisation of a row (stable key order, UTF-8 kept readable)."""
    return json.dumps(row, ensure_ascii=False, allow_nan=False)


class ResumableJsonlWriter:
    """`open()` returns the rows already there (resume) and positions for appending."""

    def __init__(self, path: str | Path, *, resume: bool = False, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.resume = resume
        self.overwrite = overwrite
        self._fh: IO[str] | None = None
        self.dropped_partial_line = False

    def open(self) -> list[dict[str, Any]]:
        """Rows already written (empty unless resuming); raises if output exists and may not be touched."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing: list[dict[str, Any]] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            if self.resume:
                existing = self._recover()
            elif not self.overwrite:
                raise FileExistsError(
                    f"{self.path} exists; pass --resume to continue it or --overwrite to replace it"
                )
            else:
                self.path.unlink()
        self._fh = self.path.open("a", encoding="utf-8")
        return existing

    def _recover(self) -> list[dict[str, Any]]:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1  # everything after the last newline is a partial row
        if end < len(data):
            self.dropped_partial_line = True
            with self.path.open("r+b") as fh:
                fh.truncate(end)
        rows = []
        for lineno, line in enumerate(data[:end].decode("utf-8").split("\n"), 1):  # "\n" alone ends a row
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply to be a row
                raise ValueError(
                    f"{self.path}:{lineno}: corrupt row ({exc}); fix or delete that line"
                ) from None
        return rows

    def keep_first(self, count: int) -> None:
        """Cut the file after its first `count` rows (the rest is redone: see `pipeline.run_rows`)."""
        data = self.path.read_bytes()
        offset = seen = 0
        while seen < count:
            end = data.index(b"\n", offset) + 1
            if data[offset:end].strip():
                seen += 1
            offset = end
        with self.path.open("r+b") as fh:
            fh.truncate(offset)

    def write(self, row: dict[str, Any]) -> None:
        if self._fh is None:
            raise RuntimeError("writer is not open")
        self._fh.write(dumps_row(row) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ResumableJsonlWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
