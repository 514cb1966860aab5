"""Runs recorded in an earlier `results.json`, added to this output's tables (`--merge-results`).

Why: a finished run's checkpoints and logs live in its output folder, which a new machine does not
have; the `results.json` kept in `docs/results/` holds every run's full record. Merging puts those
records beside this output's own runs, so a method trained today is compared with the oracle trained
last week, but only after checking that both were made with the same settings, at the same stage,
from the same warm starts: a table that mixed warm starts would compare different starting points.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from dupo_verl.demo.results import RunRecord

_RECORD_FIELDS = {f.name for f in fields(RunRecord)}
_REQUIRED = ("method", "seed", "primal_before", "dual_before")
# The demo's own results.json files are under 1 MB (a 3-seed, 6-method grid: 0.6 MB); a file far
# larger is not one of them, and reading it whole would hold it all in memory.
MAX_RESULTS_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RecordedRuns:
    """The run records of one earlier `results.json`."""

    source: Path
    records: tuple[RunRecord, ...]


def _record(raw: Any, where: str) -> RunRecord:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a run record must be an object, got {type(raw).__name__}")
    absent = [k for k in _REQUIRED if k not in raw]
    unknown = sorted(set(raw) - _RECORD_FIELDS)
    if absent or unknown:
        raise ValueError(f"{where}: " + "; ".join(
            ([f"missing {', '.join(absent)}"] if absent else []) + ([f"unknown field(s) {unknown}"] if unknown else [])))
    try:
        record = RunRecord(**raw)
        record.seed = int(record.seed)
        record.curve = [(int(s), float(v)) for s, v in record.curve]
        record.dual_curve = [(int(s), float(v)) for s, v in record.dual_curve]
        befores = (float(record.primal_before), float(record.dual_before))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: unreadable seed, curve or accuracy ({exc})") from None
    if not all(math.isfinite(v) for v in befores):
        raise ValueError(f"{where}: primal_before/dual_before must be finite numbers")
    record.primal_before, record.dual_before = befores
    if not isinstance(record.detail, dict):
        raise ValueError(f"{where}: detail must be an object")
    return record


def load_recorded_runs(path: Path, settings: Mapping[str, Any], keys: Sequence[str], stage: int) -> RecordedRuns:
    """The records of `path` made at `stage` (1: not continued), after checking `keys` of its config
    equal `settings` (this output's config, as config.json writes it)."""
    where = f"--merge-results {path}"
    file = Path(path)
    try:
        if not file.is_file():
            raise ValueError("not a regular file")
        size = file.stat().st_size
        if size > MAX_RESULTS_BYTES:
            raise ValueError(f"{size} bytes, more than the {MAX_RESULTS_BYTES} a demo results.json can be")
        data = json.loads(file.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise ValueError(f"{where}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict) or not isinstance(data.get("methods"), dict):
        raise ValueError(f"{where}: not a demo results.json (needs the objects `config` and `methods`)")
    for key in keys:
        if data["config"].get(key) != settings.get(key):
            raise ValueError(f"{where}: {key} was {data['config'].get(key)!r} there and is {settings.get(key)!r} here; "
                             "its runs were made with other settings")
    records = []
    for method, summary in data["methods"].items():
        runs = summary.get("runs") if isinstance(summary, dict) else None
        if not isinstance(runs, list):
            raise ValueError(f"{where}: methods.{method}.runs must be a list of run records")
        for i, raw in enumerate(runs):
            record = _record(raw, f"{where}: methods.{method}.runs[{i}]")
            if record.method != method:
                raise ValueError(f"{where}: methods.{method}.runs[{i}] is a {record.method!r} run")
            run_stage = int(record.detail.get("stages", 1)) if method != "warm_start" else stage
            if run_stage != stage:
                raise ValueError(f"{where}: {method} seed {record.seed} ran {run_stage} stage(s), this output is "
                                 f"stage {stage}; merge the results.json of the same stage")
            records.append(record)
    return RecordedRuns(Path(path), tuple(records))


def _same_start(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return all(math.isclose(x, y, rel_tol=0.0, abs_tol=1e-9) for x, y in zip(a, b, strict=True))


def with_recorded_runs(own: Sequence[RunRecord], recorded: Sequence[RecordedRuns], methods: Collection[str],
                       seeds: Collection[int], log: Callable[[str], None] = print) -> list[RunRecord]:
    """`own` plus every recorded run of the asked methods and seeds that `own` lacks.

    A recorded run must start where this output's run of its seed starts: the same held-out primal
    and dual accuracy before training (the warm start scored on the same held-out problems). A
    difference is refused; a seed without a run here to check against is skipped and counted.
    """
    merged = list(own)
    have = {(r.method, r.seed) for r in own}
    start = {r.seed: (r.primal_before, r.dual_before) for r in own}
    skipped: Counter[str] = Counter()
    for source in recorded:
        for record in source.records:
            here = start.get(record.seed)
            if here is not None and not _same_start(here, (record.primal_before, record.dual_before)):
                raise ValueError(
                    f"--merge-results {source.source}: {record.method} seed {record.seed} started at held-out "
                    f"primal {record.primal_before:.4f} dual {record.dual_before:.4f}, this output's warm start "
                    f"scores {here[0]:.4f} {here[1]:.4f}: not the same warm start")
            if record.method not in methods or record.seed not in seeds:
                skipped["not asked for by --methods/--seeds"] += 1
            elif (record.method, record.seed) in have:
                skipped["this output has its own run"] += 1
            elif here is None:
                skipped["no run of its seed here to check its warm start against"] += 1
            else:
                merged.append(record)
                have.add((record.method, record.seed))
    added = len(merged) - len(own)
    log(f"--merge-results: added {added} recorded run(s)"
        + "".join(f"; skipped {n}: {why}" for why, n in sorted(skipped.items())))
    return merged
