"""Command-line faults a fifth outside probe found (prepare, the offline backends' flags, task modules,
Ctrl-C, the demos' launch flags): each test fails on the code before the fix."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dupo_verl.cli import main
from dupo_verl.offline.cli_args import check_backend_args

PROBLEM = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _one_error_line(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- prepare ------------------------------------------------------------------------------------------


def test_an_answer_column_no_row_has_stops_before_writing(tmp_path, capsys):
    """`--answer-key answr` wrote every gold label as "" and exited 0: validation would score 0."""
    src = _write_jsonl(tmp_path / "q.jsonl", [{"problem": PROBLEM, "answer": "7"}] * 3)
    out = tmp_path / "out.parquet"
    argv = ["prepare", "math", "--input", str(src), "--output", str(out), "--no-progress"]
    assert main([*argv, "--answer-key", "answr"]) != 0
    _one_error_line(capsys, "'answr'", "answer field", "misspelt", "'problem'")
    assert not out.exists()
    assert main([*argv, "--answer-key", "answer"]) == 0


def test_some_rows_without_an_answer_are_still_notes_not_an_error(tmp_path):
    src = _write_jsonl(tmp_path / "q.jsonl", [{"problem": PROBLEM, "answer": "7"}, {"problem": PROBLEM}])
    out = tmp_path / "out.parquet"
    assert main(["prepare", "math", "--input", str(src), "--output", str(out), "--answer-key", "answer",
                 "--no-progress"]) == 0
    assert json.loads(Path(f"{out}.summary.json").read_text())["notes"] == {"missing_answer": 1}


def test_overwrite_never_removes_another_runs_output_named_like_a_val_file(tmp_path, capsys):
    """`prepare --output test.parquet --overwrite` removed `test_val.parquet`, another run's train file."""
    src = _write_jsonl(tmp_path / "q.jsonl", [{"problem": PROBLEM, "answer": "7"}] * 2)
    other = tmp_path / "test_val.parquet"
    base = ["prepare", "math", "--input", str(src), "--answer-key", "answer", "--no-progress"]
    assert main([*base, "--output", str(other)]) == 0
    before = other.read_bytes()
    capsys.readouterr()
    assert main([*base, "--output", str(tmp_path / "test.parquet"), "--overwrite"]) != 0
    _one_error_line(capsys, "test_val.parquet", "another prepare run's output")
    assert other.read_bytes() == before and not (tmp_path / "test.parquet").exists()


# -- task modules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["raise SystemExit(0)", "import sys; sys.exit(3)",
                                  "import argparse; argparse.ArgumentParser().parse_args(['--x'])"])
def test_a_task_module_that_exits_at_import_is_one_error_line(tmp_path, capsys, monkeypatch, body):
    """It ended the whole CLI with its own status and no message (exit 0, nothing written)."""
    (tmp_path / "exiting_task_mod.py").write_text(body + "\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    src = _write_jsonl(tmp_path / "q.jsonl", [{"problem": PROBLEM}])
    code = main(["prepare", "task", "--name", "math", "--import", "exiting_task_mod", "--input", str(src),
                 "--output", str(tmp_path / "o.parquet"), "--no-progress"])
    assert code not in (0, None)
    _one_error_line(capsys, "exiting_task_mod", "SystemExit")


# -- the local backends' flags ----------------------------------------------------------------------------


def _backend_args(**values):
    import argparse

    defaults = {"backend": "hf", "model": "m", "dtype": "auto", "device": "cpu"}
    return argparse.Namespace(**{**defaults, **values})


@pytest.mark.parametrize("values, words", [
    ({"dtype": "bogus"}, "--dtype must be one of"),
    ({"device": "nonsense"}, "--device must be a torch device"),
    ({"device": "cuda"}, "no CUDA device"),
    ({"backend": "vllm", "dtype": "int3"}, "--dtype must be one of"),
])
def test_bad_local_backend_flags_are_one_line_before_any_model_loads(values, words):
    import torch

    if values.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=words):
        check_backend_args(_backend_args(**values))


def test_good_local_backend_flags_pass():
    for values in ({}, {"dtype": "bfloat16"}, {"dtype": "float32", "device": "cpu"}, {"backend": "vllm"}):
        check_backend_args(_backend_args(**values))


# -- Ctrl-C ------------------------------------------------------------------------------------------------


def test_ctrl_c_is_one_line_and_exit_status_130(tmp_path, monkeypatch, capsys):
    from dupo_verl.cli import prepare as prepare_cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_cli, "_run_math", interrupted)  # looked up when the parser is built
    src = _write_jsonl(tmp_path / "q.jsonl", [{"problem": PROBLEM}])
    assert main(["prepare", "math", "--input", str(src), "--output", str(tmp_path / "o.parquet")]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_on_the_real_command_prints_no_traceback(tmp_path):
    """SIGINT to a running `dupo-verl prepare`: the process ends with one line, not a traceback."""
    src = tmp_path / "slow.jsonl"
    src.write_text("".join(json.dumps({"problem": PROBLEM + f" {i}"}) + "\n" for i in range(200000)), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dupo_verl", "prepare", "math", "--input", str(src), "--output",
         str(tmp_path / "o.parquet"), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        try:
            proc.wait(timeout=3)  # into its work: importing, reading or writing
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    if proc.returncode == 0:
        pytest.skip("prepare finished before the interrupt")
    assert "Traceback" not in err, err[-2000:]
    assert proc.returncode == 130 and "interrupted" in err


def test_two_sum_problem_count_is_capped_below_exhausting_memory(tmp_path, capsys):
    """10**7 rows (the old cap) reached 5.6 GB before finishing: all rows are held before writing."""
    out = tmp_path / "t.parquet"
    with pytest.raises(SystemExit):
        main(["prepare", "two-sum", "--num-problems", str(10**6 + 1), "--output", str(out)])
    assert "--num-problems" in capsys.readouterr().err and not out.exists()


def test_a_symlink_loop_and_a_damaged_saved_dataset_are_named_as_such(tmp_path, capsys):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    damaged = tmp_path / "saved"
    damaged.mkdir()
    (damaged / "state.json").write_text("{bad", encoding="utf-8")
    (damaged / "dataset_info.json").write_text("{}", encoding="utf-8")
    for path, words in ((tmp_path / "a", "symbolic link that leads to no file"), (damaged, "damaged")):
        assert main(["prepare", "math", "--input", str(path), "--output", str(tmp_path / "o.parquet")]) != 0
        _one_error_line(capsys, str(path), words)


def test_csv_row_errors_count_rows_as_every_other_message_does(tmp_path):
    """CSV errors said "q.csv row 4" (1-based) beside "row 2" (0-based) in one summary."""
    src = tmp_path / "q.csv"
    src.write_text('problem,answer\n"What is 3 + 4?",7\n"What is 1 + 2?",3,extra\n', encoding="utf-8")
    out = tmp_path / "o.parquet"
    assert main(["prepare", "math", "--input", str(src), "--output", str(out), "--answer-key", "answer",
                 "--no-progress"]) == 0
    errors = json.loads(Path(f"{out}.summary.json").read_text())["errors"]
    assert errors == ["row 1 (q.csv line 3) has more cells than columns"]
