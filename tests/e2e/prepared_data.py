"""Small real datasets for the DuPO runs, made the way users make them: `dupo-verl prepare` over
short subsets of the shared GSM8K and FLORES files (short enough for 256-token prompts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import FLORES, GSM8K


def dupo_cli(*args: str) -> str:
    """Run `dupo-verl <args>` with this venv's interpreter; return stdout, fail with its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "dupo_verl", *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"dupo-verl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


def short_gsm8k_subset(out: Path, rows: int = 16, max_chars: int = 220, skip: int = 0) -> Path:
    """`rows` GSM8K problems short enough for a 256-token prompt (after the first `skip` such), as JSONL."""
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = []
    with open(GSM8K, encoding="utf-8") as fh:
        for line in fh:
            if len(json.loads(line)["problem"]) <= max_chars:
                kept.append(line)
            if len(kept) == skip + rows:
                break
    out.write_text("".join(kept[skip:]), encoding="utf-8")
    return out


def short_flores_pair(
    out_dir: Path, src: str, tgt: str, rows: int = 16, max_chars: int = 140, skip: int = 0
) -> tuple[Path, Path]:
    """Line-aligned FLORES subsets (source, reference) of sentences short on both sides."""
    out_dir.mkdir(parents=True, exist_ok=True)
    src_lines = (FLORES / f"{src}.txt").read_text(encoding="utf-8").splitlines()
    tgt_lines = (FLORES / f"{tgt}.txt").read_text(encoding="utf-8").splitlines()
    pairs = [(s, t) for s, t in zip(src_lines, tgt_lines, strict=True) if len(s) <= max_chars and len(t) <= max_chars]
    pairs = pairs[skip : skip + rows]
    src_path, tgt_path = out_dir / f"{src}.txt", out_dir / f"{tgt}.txt"
    src_path.write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    tgt_path.write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    return src_path, tgt_path
