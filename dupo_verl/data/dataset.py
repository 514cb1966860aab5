"""`DuPODataset`: verl's `RLHFDataset` reading raw data and making the dual questions at load time,
for users who skip `dupo-verl prepare`.

    data.custom_cls.path=pkg://dupo_verl.data.dataset data.custom_cls.name=DuPODataset
    +data.dupo.task=math +data.dupo.problem_key=problem +data.dupo.answer_key=answer

Options under `data.dupo`: `task` (required for raw files), `<field>_key` column names (math:
problem/answer, translation: source/reference, span: text/answer, two_sum: a/b), `id_key`,
`seed` (0), `max_duals_per_problem` (8), `split` ("train"), `agent_name` ("dupo_agent"),
`data_source`, `keep_unmaskable`, `strict`, `params` (a mapping of task parameters); any other key
is a task parameter too (`+data.dupo.src_lang=eng_Latn`). Files already written by `prepare`
(parquet rows with `extra_info.dupo`) are read as they are. Rows without a dual question are
dropped and counted in the log, as `prepare` does. `data.dupo.task` may be `module:Class` (this
job's own config, so the module is imported); a `module:Class` name inside the data is not, unless
allowed with the environment variable `DUPO_TASK_MODULES` (see `dupo_verl.tasks.registry`).
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow.parquet as pq
from verl.utils.dataset.rl_dataset import RLHFDataset

from dupo_verl.data.prepare import PrepareConfig, build_rows
from dupo_verl.data.readers import open_source
from dupo_verl.data.rows import DEFAULT_AGENT, RowOptions
from dupo_verl.data.writer import rows_to_table
from dupo_verl.plain import to_plain
from dupo_verl.tasks import get_task
from dupo_verl.tasks.inputs import data_source
from dupo_verl.tasks.registry import allow_task_modules

logger = logging.getLogger(__name__)

ADAPTER_OPTIONS = frozenset(
    {
        "task",
        "params",
        "id_key",
        "seed",
        "max_duals_per_problem",
        "split",
        "agent_name",
        "data_source",
        "keep_unmaskable",
        "strict",
        "format",
    }
)


def dupo_options(config: Mapping[str, Any]) -> dict[str, Any]:
    options = to_plain(config.get("dupo", None)) or {}
    if not isinstance(options, dict):
        raise ValueError(f"data.dupo must be a mapping, got {options!r}")
    return options


# The ranges `dupo-verl prepare --seed / --max-duals-per-problem` accept.
MAX_SEED = 2**63 - 1
MAX_DUALS = 10**6


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r:.60}"


def _text_option(options: Mapping[str, Any], name: str, default: str) -> str:
    """`data.dupo.<name>` as non-blank text: `str(None)` would look for a column "None"."""
    value = options.get(name, default)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"data.dupo.{name} must be non-empty text, got {_shown(value)}")
    return value


def _int_option(
    options: Mapping[str, Any], name: str, default: int, high: int, low: int = 0, nullable: bool = False
) -> int | None:
    """`data.dupo.<name>` as an integer in [low, high] (or null when `nullable`): `int()` would
    truncate 1.5 and a NaN cap would silently remove the cap."""
    value = options.get(name, default)
    if value is None and nullable:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high:
        return int(value)
    null = ", or null for no cap" if nullable else ""
    raise ValueError(f"data.dupo.{name} must be an integer in [{low}, {high}]{null}, got {_shown(value)}")


def _bool_option(options: Mapping[str, Any], name: str, default: bool) -> bool:
    """`data.dupo.<name>` as a bool; Hydra gives a bool for `=true`, a quoted 'false' stays text
    (which `bool()` would read as True)."""
    value = options.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"data.dupo.{name} must be true or false, got {_shown(value)}")


def is_prepared(path: str) -> bool:
    """A parquet file written by `prepare` (rows already carry `extra_info.dupo`)."""
    if not path.endswith(".parquet"):
        return False
    schema = pq.read_schema(path)
    if "prompt" not in schema.names or "extra_info" not in schema.names:
        return False
    extra = schema.field("extra_info").type
    return any(f.name == "dupo" for f in extra) if hasattr(extra, "num_fields") else False


class DuPODataset(RLHFDataset):
    """An `RLHFDataset` over raw jsonl/json/parquet/csv/txt files, decomposed into dual questions
    with the task named in `data.dupo.task`."""

    def _read_files_and_tokenize(self) -> None:
        frames = [self._load(path) for path in self.data_files]
        self.dataframe = datasets.concatenate_datasets(frames) if len(frames) > 1 else frames[0]
        total = len(self.dataframe)
        if 0 < self.max_samples < total:
            if self.shuffle:
                rng = np.random.default_rng(*((self.seed,) if self.seed is not None else ()))
                indices = rng.choice(total, size=self.max_samples, replace=False)
            else:
                indices = np.arange(self.max_samples)
            self.dataframe = self.dataframe.select(indices.tolist())
        self.dataframe = self.maybe_filter_out_long_prompts(self.dataframe)

    def _load(self, path: str) -> datasets.Dataset:
        if is_prepared(path):
            return datasets.load_dataset("parquet", data_files=path)["train"]
        options = dupo_options(self.config)
        if "task" not in options:
            raise ValueError(
                f"{path} is raw data: set data.dupo.task (e.g. +data.dupo.task=math) to use DuPODataset"
            )
        params = options.get("params") or {}
        if not isinstance(params, Mapping):  # e.g. a JSON string: name it, not dict()'s error
            raise ValueError(
                f"data.dupo.params must be a mapping of task parameters, got {type(params).__name__} {params!r}"
            )
        params = dict(params)
        keys: dict[str, str] = {}
        for key, value in options.items():
            if key in ADAPTER_OPTIONS:
                continue
            if key.endswith("_key"):
                keys[key[: -len("_key")]] = _text_option(options, key, "")
            else:
                params[key] = value
        name = str(options["task"])
        if ":" in name:  # `module:Class` in the job's own config is the person's choice, not the data's
            allow_task_modules([name.partition(":")[0]])
        # checked before the file is read: a bad option is one line naming it, not a late TypeError
        row_options: dict[str, Any] = {
            "keys": keys,
            "id_key": _text_option(options, "id_key", "id"),
            "seed": _int_option(options, "seed", 0, MAX_SEED),
            "max_duals": _int_option(options, "max_duals_per_problem", 8, MAX_DUALS, low=1, nullable=True),
            "agent_name": _text_option(options, "agent_name", DEFAULT_AGENT),
            "keep_unmaskable": _bool_option(options, "keep_unmaskable", False),
        }
        strict = _bool_option(options, "strict", False)
        split = _text_option(options, "split", "train")
        task = get_task(name, **params)
        source = open_source(path, options.get("format"))
        rows = RowOptions(
            data_source=str(options.get("data_source") or data_source(task, source.stem)), **row_options
        )
        config = PrepareConfig(task=task, rows=rows, strict=strict, progress=False)
        built, summary = build_rows(source.records, config, source.total)
        if split == "val":
            summary.rows_val = len(built)
        else:
            summary.rows_train = len(built)
        log = logger.warning if summary.rows_skipped else logger.info
        log("DuPODataset %s: %s", Path(path).name, summary.format().replace("\n", "; "))
        if not built:
            raise ValueError(f"{path}: no row has a dual question ({dict(summary.rows_skipped)})")
        for row in built:
            row["extra_info"]["split"] = split
        return datasets.Dataset(rows_to_table(built))
