"""Turn one raw record into one verl row (`RLHFDataset` schema) with its DuPO dual questions.

Row layout (every consumer of our parquet relies on it):

    data_source   str                      e.g. "dupo/math/gsm8k_test"
    prompt        [{"role", "content"}]    the primal chat messages
    ability       str
    reward_model  {"style": "rule", "ground_truth": gold or ""}
    extra_info    {"index", "split", "id", <task keys>, "dupo": {"task", "params", "duals"}}
    agent_name    str                      "dupo_agent"

`extra_info["dupo"]["params"]` rebuilds the task (`get_task(task, **params)`). Parquet cannot store
an empty struct, so a task without parameters is written with `{"_empty": None}`; readers drop
None-valued parameters (`dupo_verl.scoring.task_from_info` does).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dupo_verl.data.readers import RawRecord
from dupo_verl.tasks.base import Decomposition, DualQuestion, DualTask
from dupo_verl.tasks.inputs import InputField, ground_truth, input_fields, row_extra_info

EMPTY_PARAMS = {"_empty": None}
RESERVED_EXTRA_KEYS = frozenset({"index", "split", "id", "dupo"})
DEFAULT_AGENT = "dupo_agent"


class BadRow(ValueError):
    """A record that cannot become a row; `reason` is the counter key, the message names row and field."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RowOptions:
    """How records become rows. `keys`: field -> column overrides (e.g. {"problem": "question"})."""

    data_source: str
    keys: Mapping[str, str] = field(default_factory=dict)
    id_key: str = "id"
    seed: int = 0
    max_duals: int | None = 8
    agent_name: str = DEFAULT_AGENT
    keep_unmaskable: bool = False


@dataclass
class RowOutcome:
    """What became of one record: a row, or the reason it was skipped."""

    row: dict[str, Any] | None = None
    skip_reason: str | None = None
    message: str = ""
    example: dict[str, Any] | None = None
    candidates_skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    duals: int = 0


def check_keys(task: DualTask, keys: Mapping[str, str]) -> None:
    """Fail early on a key override for a field the task does not have, or a required field
    without a column."""
    fields = input_fields(task)
    if fields is None:
        if keys:
            raise ValueError(f"task {task.name!r} reads raw records as they are; it takes no key overrides")
        return
    unknown = sorted(set(keys) - set(fields))
    if unknown:
        raise ValueError(f"task {task.name!r} has no input field(s) {unknown}; fields: {sorted(fields)}")
    for name, spec in fields.items():
        if spec.required and not (keys.get(name) or spec.key):
            raise ValueError(f"task {task.name!r} needs a column for field {name!r}")


def example_from_record(
    task: DualTask, record: Mapping[str, Any], index: int, keys: Mapping[str, str]
) -> tuple[dict, Counter]:
    """The task's example from a raw record (raises `BadRow`), and notes such as a missing answer."""
    fields = input_fields(task)
    notes: Counter = Counter()
    if fields is None:
        return dict(record), notes
    example: dict[str, Any] = {}
    for name, spec in fields.items():
        column = keys.get(name) or spec.key
        if column is None:
            continue
        value = record.get(column)
        if value is None:
            if spec.required:
                raise BadRow(f"missing_{name}", f"row {index}: field {column!r} ({name}) is missing or null")
            if name in keys:
                notes[f"missing_{name}"] += 1
            continue
        example[name] = _checked(value, spec, name, column, index)
    return example, notes


def _checked(value: Any, spec: InputField, name: str, column: str, index: int) -> Any:
    """A text field's value as text. A required field (the problem, the source) must be text: a
    number there is not a problem (1e308 would become "1e+308"). An optional one (a gold answer)
    may be a finite number; NaN or infinity would be written as the gold label "nan" / "inf"."""
    reason, where = f"bad_{name}", f"row {index}: field {column!r} ({name})"
    if spec.kind == "int":  # an integer, or its digits as text ("7"): {"a": 1}, "seven" and NaN are not
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
            return int(value.strip())
        raise BadRow(reason, f"{where} must be an integer, got {type(value).__name__} {value!r:.40}")
    if (
        isinstance(value, bool)
        or not isinstance(value, str | int | float)
        or (spec.required and not isinstance(value, str))
    ):
        raise BadRow(reason, f"{where} must be text, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRow(reason, f"{where} is {value}, not a finite number")
    text = value if isinstance(value, str) else str(value)
    if spec.required and not text.strip():
        raise BadRow(f"empty_{name}", f"row {index}: field {column!r} ({name}) is empty")
    return text


def task_params(task: DualTask) -> dict[str, Any]:
    return dict(task.params) if task.params else dict(EMPTY_PARAMS)


def build_row(task: DualTask, raw: RawRecord, options: RowOptions) -> RowOutcome:
    """One record -> one row, or a counted skip (`skip_reason`). Never raises for a bad record."""
    if raw.error is not None:
        return RowOutcome(skip_reason=raw.error[0], message=raw.error[1])
    assert raw.data is not None
    try:
        example, notes = example_from_record(task, raw.data, raw.index, options.keys)
        decomposition = task.decompose(example, seed=options.seed)
        found = decomposition.duals  # may build its questions lazily (math): slice before reading
        outcome = RowOutcome(example=example, notes=notes, candidates_skipped=_skip_counts(task, decomposition))
        if options.max_duals is not None and len(found) > options.max_duals:
            outcome.candidates_skipped["over_cap"] += len(found) - options.max_duals
            found = found[: options.max_duals]
        duals = list(found)
        if not duals and not options.keep_unmaskable:
            outcome.skip_reason = "no_dual_question"
            outcome.message = (
                f"row {raw.index}: no dual question ({dict(decomposition.skipped) or 'nothing to hide'})"
            )
            return outcome
        outcome.row = _row(task, raw, example, duals, options)
        outcome.duals = len(duals)
        return outcome
    except BadRow as exc:
        return RowOutcome(skip_reason=exc.reason, message=str(exc))
    except Exception as exc:  # a task rejecting (or failing on) this example: counted, not fatal
        return RowOutcome(skip_reason="task_error", message=f"row {raw.index}: {type(exc).__name__}: {exc}")


def _row(task: DualTask, raw: RawRecord, example: dict, duals: list, options: RowOptions) -> dict[str, Any]:
    extra = row_extra_info(task, example)
    clash = RESERVED_EXTRA_KEYS & set(extra)
    if clash:
        raise TypeError(f"task {task.name!r} row_extra_info may not set {sorted(clash)}")
    record_id = raw.data.get(options.id_key) if raw.data else None
    messages = _chat_messages(task, task.primal_messages(example))
    return {
        "data_source": options.data_source,
        "prompt": messages,
        "ability": task.ability or task.name,
        "reward_model": {"style": "rule", "ground_truth": ground_truth(task, example)},
        "extra_info": {
            "index": raw.index,
            "split": "train",
            "id": "" if record_id is None else str(record_id),
            **extra,
            "dupo": {"task": task.name, "params": task_params(task), "duals": [_dual_dict(task, i, d) for i, d in enumerate(duals)]},
        },
        "agent_name": options.agent_name,
    }


def _skip_counts(task: DualTask, decomposition: Any) -> Counter:
    """`Decomposition.skipped` checked: reasons are text, counts whole numbers >= 0 (a -3 was summed
    into the summary as is)."""
    if not isinstance(decomposition, Decomposition):
        raise TypeError(f"task {task.name!r}: decompose must return a Decomposition, got {type(decomposition).__name__}")
    skipped = decomposition.skipped
    if not isinstance(skipped, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in skipped.items()
    ):
        raise TypeError(f"task {task.name!r}: Decomposition.skipped must count reasons (text -> whole number >= 0), got {skipped!r:.80}")
    return Counter(skipped)


_ROLES = ("system", "user", "assistant")
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,30}")


def _chat_messages(task: DualTask, messages: Any) -> list[dict[str, str]]:
    """The primal prompt as verl reads it: a non-empty list of {role, content} text messages.
    `str()` of each field had written a `None` content as the prompt "None" and an empty list as no prompt."""
    if not isinstance(messages, list | tuple) or not messages:
        raise TypeError(f"task {task.name!r}: primal_messages must return a non-empty list of messages, got {messages!r:.60}")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise TypeError(
                f"task {task.name!r}: primal_messages()[{i}] must be {{'role': one of {list(_ROLES)}, 'content': text}}, "
                f"got {m!r:.80}"
            )
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _dual_dict(task: DualTask, position: int, dual: Any) -> dict[str, Any]:
    """A dual question as a row stores it, checked as training will read it (`DualQuestion.from_dict`):
    a question the scorer would refuse is this row's `task_error`, not a file that fails every step.
    A finite number as `value` is written as text (one column type for pyarrow)."""
    if not isinstance(dual, DualQuestion):
        raise TypeError(f"task {task.name!r}: decompose gave {type(dual).__name__} as dual question {position}, not a DualQuestion")
    fields = {"masked_text": dual.masked_text, "variable": dual.variable, "value": dual.value, "template": dual.template}
    try:
        checked = DualQuestion.from_dict(fields, task.dual_templates)
    except ValueError as exc:
        raise ValueError(f"task {task.name!r} dual question {position}: {exc}") from None
    # Same fields as DualQuestion.to_dict(), without dataclasses.asdict's deep copy (hot path).
    return {"masked_text": checked.masked_text, "variable": checked.variable, "value": checked.value, "template": checked.template}
