"""Issue 16 (classes 3, 4, 6) and issue 17 §4 for `dupo-verl filter` / `rerank` / `report`: settings
recorded and checked on resume, failed and invalid rows retried, a mistyped task stopped at start,
remappable task fields, and one clear line for every user error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from offline_fixtures import ScriptedBackend, arith_row, install_backend, one_error_line
from omegaconf import OmegaConf

from dupo_verl.cli import main
from dupo_verl.files import atomic_write
from dupo_verl.offline import report as report_module
from dupo_verl.offline import rerank as rerank_module
from dupo_verl.offline.jsonl_writer import ResumableJsonlWriter
from dupo_verl.offline.pipeline import JobOptions, run_rows, settings_path
from dupo_verl.offline.primal import PrimalSampling
from dupo_verl.offline.rerank import RerankInput, RerankSettings, build_jobs, rerank_row
from dupo_verl.plain import to_plain
from dupo_verl.scoring import DualOptions


def ans(*values):
    return [f"ANSWER: {v}" for v in values]


POOLS = {"What is 2 + 3?": ans(5, 7), "What is 4 + 6?": ans(10, 11), "What is 7 + 1?": ans(8, 9)}
ROWS = [arith_row(2, 3, "a"), arith_row(4, 6, "c"), arith_row(7, 1, "d")]
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run(path: Path, *, settings_record=None, resume=False, fail=None):
    backend = ScriptedBackend(POOLS, fail=fail)
    rerank = RerankSettings(sampling=PrimalSampling(n=2, max_tokens=8), dual=DualOptions(dual_samples=1))
    result = run_rows(
        build_jobs(ROWS, RerankInput()),
        key=lambda j: (j.index, j.id),
        worker=lambda job, generate: rerank_row(job, generate, rerank),
        make_backend=lambda: backend,
        options=JobOptions(output=path, resume=resume, progress=False, settings=settings_record),
    )
    return result, backend


# -- class 3: settings recorded; a resume with other settings refused --------------------------------


def test_settings_are_recorded_beside_the_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run(out, settings_record={"n": 2, "dual_samples": 1})
    record = json.loads(settings_path(out).read_text())
    assert record["settings"] == {"n": 2, "dual_samples": 1}


@FUZZ
@given(
    old=st.dictionaries(st.sampled_from(["n", "dual_samples", "model", "task", "seed"]), st.integers(0, 3)),
    new=st.dictionaries(st.sampled_from(["n", "dual_samples", "model", "task", "seed"]), st.integers(0, 3)),
)
def test_resume_refuses_exactly_the_changed_settings(old, new, tmp_path_factory) -> None:
    out = tmp_path_factory.mktemp("resume") / "out.jsonl"
    run(out, settings_record=old)
    before = out.read_bytes()
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not changed:
        result, backend = run(out, settings_record=new, resume=True)
        assert backend.requests == [] and result.resumed_rows == len(ROWS)
        return
    with pytest.raises(ValueError, match="other settings") as refused:
        run(out, settings_record=new, resume=True)
    message = str(refused.value)
    changes = message.split("other settings (", 1)[1].rsplit("); rerun", 1)[0]
    named = sorted(change.split(" ", 1)[0] for change in changes.split("; "))
    assert named == changed
    assert out.read_bytes() == before  # nothing appended


def test_resume_of_an_output_without_settings_record_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run(out, settings_record={"n": 2})
    settings_path(out).unlink()
    with pytest.raises(ValueError, match="no record of its settings"):
        run(out, settings_record={"n": 2}, resume=True)


def install_scripted_backend(monkeypatch, fail=None) -> list[ScriptedBackend]:
    return install_backend(monkeypatch, POOLS, fail)


def test_rerank_cli_resume_with_other_n_or_dual_samples_is_one_line(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    install_scripted_backend(monkeypatch)
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    argv = ["rerank", "--input", str(src), "--output", str(out), "--backend", "hf", "--model", "scripted", "--no-progress"]
    assert main([*argv, "--n", "2", "--dual-samples", "1"]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--n", "3", "--dual-samples", "1", "--resume"]) == 2
    assert "n 2 -> 3" in one_error_line(capsys.readouterr().err)
    assert main([*argv, "--n", "2", "--dual-samples", "2", "--resume"]) == 2
    assert "dual_samples 1 -> 2" in one_error_line(capsys.readouterr().err)
    assert main([*argv, "--n", "2", "--dual-samples", "1", "--model", "other", "--resume"]) == 2
    assert "model 'scripted' -> 'other'" in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == before
    assert main([*argv, "--n", "2", "--dual-samples", "1", "--resume"]) == 0


# -- class 6: failed / invalid rows are retried by --resume; a mistyped task stops at start ----------


def test_resume_retries_failed_rows_and_keeps_the_rest(tmp_path: Path) -> None:
    full, broken = tmp_path / "full.jsonl", tmp_path / "broken.jsonl"
    run(full, settings_record={"n": 2})
    result, _ = run(broken, settings_record={"n": 2}, fail=lambda prompt: prompt == "What is 4 + 6?")
    assert [r["status"] for r in result.rows] == ["ok", "failed", "ok"]
    result, backend = run(broken, settings_record={"n": 2}, resume=True)
    assert result.retried_rows == 1 and result.resumed_rows == 2
    assert [r["status"] for r in result.rows] == ["ok", "ok", "ok"]
    assert broken.read_bytes() == full.read_bytes()  # one row per input row, in input order
    assert {r.messages[-1]["content"] for r in backend.requests if r.n == 2} == {"What is 4 + 6?"}


@FUZZ
@given(statuses=st.lists(st.sampled_from(["ok", "failed", "invalid"]), min_size=1, max_size=6))
def test_writer_keeps_exactly_the_first_rows(statuses, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("w") / "rows.jsonl"
    rows = [{"index": i, "status": s, "text": "a\u2028b\x85c"} for i, s in enumerate(statuses)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    writer = ResumableJsonlWriter(path, resume=True)
    assert writer.open() == rows  # U+2028 / U+0085 inside a row do not split it
    cut = next((i for i, s in enumerate(statuses) if s != "ok"), len(statuses))
    writer.keep_first(cut)
    writer.close()
    assert ResumableJsonlWriter(path, resume=True).open() == rows[:cut]


def test_rerank_with_a_mistyped_task_stops_at_start(tmp_path: Path, monkeypatch, capsys) -> None:
    made = install_scripted_backend(monkeypatch)
    src = tmp_path / "raw.jsonl"
    src.write_text('{"id": "x", "problem": "What is 2 + 3?", "answer": "5"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    argv = ["rerank", "--input", str(src), "--output", str(out), "--backend", "hf", "--model", "scripted", "--task", "mth"]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "unknown DuPO task 'mth'" in line and "math" in line and "translation" in line
    assert not out.exists() and made == []


def test_rerank_with_bad_task_params_stops_at_start(tmp_path: Path, capsys) -> None:
    src = tmp_path / "raw.jsonl"
    src.write_text('{"text": "Hello there, 3 friends."}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    argv = ["rerank", "--input", str(src), "--output", str(out), "--backend", "hf", "--model", "scripted", "--task", "translation"]
    assert main([*argv, "--task-params", '{"src_lang": "eng_Latn"}']) == 2
    assert "tgt_lang" in one_error_line(capsys.readouterr().err) and not out.exists()


# -- issue 17 §4: the task's input fields are remappable ---------------------------------------------

TRANSLATION = {"src_lang": "eng_Latn", "tgt_lang": "deu_Latn"}


def test_rerank_translation_reads_raw_text_rows() -> None:
    rows = [{"id": "1", "text": "The cat sleeps."}, {"id": "2", "text": "Dogs bark at night."}]
    jobs = build_jobs(rows, RerankInput(task="translation", task_params=TRANSLATION))
    assert [j.error for j in jobs] == [None, None]
    assert [j.duals[0].value for j in jobs] == ["The cat sleeps.", "Dogs bark at night."]
    assert "The cat sleeps." in jobs[0].messages[-1]["content"]


def test_rerank_field_maps_a_task_field_to_a_column() -> None:
    rows = [{"id": "1", "sentence": "The cat sleeps.", "text": "decoy"}]
    spec = RerankInput(task="translation", task_params=TRANSLATION, fields={"source": "sentence"})
    (job,) = build_jobs(rows, spec)
    assert job.error is None and job.duals[0].value == "The cat sleeps."
    (missing,) = build_jobs(
        [{"id": "1", "sentence": "x"}], RerankInput(task="translation", task_params=TRANSLATION)
    )
    assert "field 'text' (source) is missing" in missing.error
    with pytest.raises(ValueError, match="no input field"):
        build_jobs(rows, RerankInput(task="translation", task_params=TRANSLATION, fields={"nope": "x"}))
    with pytest.raises(ValueError, match="no 'problem' field"):
        build_jobs(rows, RerankInput(task="translation", task_params=TRANSLATION, problem_key="q"))


def test_rerank_problem_key_still_renames_the_math_problem() -> None:
    rows = [{"id": "1", "question": "Tom has 3 apples and buys 4.", "answer": "7"}]
    (job,) = build_jobs(rows, RerankInput(problem_key="question"))
    assert job.error is None and job.gold == "7" and {d.value for d in job.duals} == {"3", "4"}


def test_rerank_cli_field_flag(tmp_path: Path, capsys) -> None:
    src = tmp_path / "raw.jsonl"
    src.write_text('{"sentence": "Hi."}\n', encoding="utf-8")
    argv = ["rerank", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), "--backend", "hf", "--model", "scripted"]
    argv += ["--task", "translation", "--task-params", json.dumps(TRANSLATION)]
    assert main([*argv, "--field", "source"]) == 2
    assert "--field must look like KEY=VALUE" in one_error_line(capsys.readouterr().err)
    assert main([*argv, "--field", "sauce=sentence"]) == 2
    assert "no input field(s) ['sauce']" in one_error_line(capsys.readouterr().err)


# -- class 4: every user error is one line -----------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["--temperature", "nan"],
        ["--top-p", "7"],
        ["--dual-top-p", "0"],
        ["--max-retries", "-1"],
        ["--max-retries", "1.5"],
        ["--n", "0"],
        ["--dual-samples", "2.5"],
        ["--seed", "-1"],
        ["--concurrency", "1e20"],
    ],
)
def test_absurd_rerank_flags_stop_at_the_door(flags, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(
            ["rerank", "--input", "x.jsonl", "--output", str(tmp_path / "o.jsonl"), "--backend", "hf", "--model", "scripted", *flags]
        )
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and f"argument {flags[0]}" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--request-timeout", "inf"], "--request-timeout must be in"),
        (["--max-concurrency", "0"], "--max-concurrency must be in"),
        (["--gpu-memory-utilization", "7"], "--gpu-memory-utilization must be in"),
    ],
)
def test_absurd_backend_flags_are_one_line(flags, message, tmp_path: Path, capsys) -> None:
    src = tmp_path / "rows.jsonl"
    src.write_text(json.dumps(ROWS[0]) + "\n", encoding="utf-8")
    argv = ["rerank", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), "--backend", "hf", "--model", "scripted", *flags]
    assert main(argv) == 2
    assert message in one_error_line(capsys.readouterr().err)


def test_filter_recover_threshold_is_checked(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(
            [
                "filter",
                "--input",
                "x.parquet",
                "--output",
                "y.parquet",
                "--backend",
                "hf",
                "--recover-threshold",
                "2",
            ]
        )
    assert "--recover-threshold: must be a number in [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["rerank", "filter", "report"])
@pytest.mark.parametrize("damage", ["missing", "corrupt_parquet", "non_utf8_jsonl", "bad_json"])
def test_unreadable_inputs_are_one_line(command: str, damage: str, tmp_path: Path, capsys) -> None:
    suffix = ".parquet" if damage in ("missing", "corrupt_parquet") else ".jsonl"
    src = tmp_path / f"in{suffix}"
    if damage == "corrupt_parquet":
        src.write_bytes(b"PAR1 garbage")
    elif damage == "non_utf8_jsonl":
        src.write_bytes(json.dumps(ROWS[0]).encode() + b"\n" + b'{"id": "\xff"}\n')
    elif damage == "bad_json":
        src.write_text(json.dumps(ROWS[0]) + "\n{oops\n", encoding="utf-8")
    out = tmp_path / f"out{suffix if command == 'filter' else '.jsonl'}"
    if command == "report":
        argv = ["report", str(src)]
    else:
        argv = [command, "--input", str(src), "--output", str(out), "--backend", "hf", "--model", "scripted", "--no-progress"]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(src.name) in line


def test_report_never_writes_over_its_results_and_checks_plot_format(tmp_path: Path, capsys) -> None:
    results = tmp_path / "r.jsonl"
    results.write_text('{"id": "1", "candidates": []}\n', encoding="utf-8")
    before = results.read_bytes()
    assert main(["report", str(results), "--json", str(results)]) == 2
    assert "refusing to write over an input" in one_error_line(capsys.readouterr().err)
    assert main(["report", str(results), "--plot", str(tmp_path / "p.xyz")]) == 2
    assert "--plot" in one_error_line(capsys.readouterr().err)
    assert results.read_bytes() == before


# -- one implementation of each helper ---------------------------------------------------------------


def test_methods_defined_once() -> None:
    assert report_module.METHODS is rerank_module.METHODS


def test_to_plain_handles_configs_numpy_and_nesting() -> None:
    value = {"a": np.array([1, 2]), "b": OmegaConf.create({"c": [1, {"d": 2}]}), "e": np.float32(0.5)}
    assert to_plain(value) == {"a": [1, 2], "b": {"c": [1, {"d": 2}]}, "e": 0.5}
    assert to_plain(np.array({"x": 1}, dtype=object)) == {"x": 1}  # a 0-d object array from a batch
    table = pa.Table.from_pylist([{"l": [1, 2], "s": {"k": "v"}}])
    assert to_plain(table.to_pandas().iloc[0].to_dict()) == {"l": [1, 2], "s": {"k": "v"}}


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": [1]}), target)
    before = target.read_bytes()

    def broken(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_filter_cli_resume_with_other_settings_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    install_scripted_backend(monkeypatch)
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    out = tmp_path / "kept.jsonl"
    argv = ["filter", "--input", str(src), "--output", str(out), "--backend", "hf", "--model", "scripted", "--no-progress"]
    assert main([*argv, "--candidates", "2"]) == 0
    work = tmp_path / "kept.jsonl.work.jsonl"
    before = work.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--candidates", "3", "--resume"]) == 2
    assert "candidates 2 -> 3" in one_error_line(capsys.readouterr().err)
    assert main([*argv, "--candidates", "2", "--recover-threshold", "1", "--resume"]) == 2
    assert "recover_threshold 0.5 -> 1.0" in one_error_line(capsys.readouterr().err)
    assert work.read_bytes() == before
    assert main([*argv, "--candidates", "2", "--resume"]) == 0


@FUZZ
@given(name=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.:", min_size=1, max_size=20))
def test_any_unknown_task_name_fails_once_at_start_without_importing(name: str) -> None:
    import sys

    from dupo_verl.tasks import task_names

    if name in task_names():
        return
    modules_before = set(sys.modules)
    with pytest.raises(KeyError) as unknown:
        build_jobs([{"id": "1", "problem": "What is 2 + 3?"}], RerankInput(task=name))
    message = str(unknown.value)
    assert "math" in message and "translation" in message  # names the known tasks
    assert set(sys.modules) == modules_before  # nothing imported because a name said so
