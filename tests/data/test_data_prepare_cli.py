"""`dupo-verl prepare` on the shared data, through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dupo_verl.cli import main
from dupo_verl.scoring import task_from_info

MATH_SETS = {"math500_test": 500, "gsm8k_test": 1319, "aime2024": 30, "amc2023": 40}


def read(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def summary_of(output: Path) -> dict:
    return json.loads(Path(f"{output}.summary.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(MATH_SETS))
def test_prepare_math(name: str, shared_data: Path, tmp_path: Path, capsys) -> None:
    src = shared_data / "math" / f"{name}.jsonl"
    gold = {r["id"]: r for r in map(json.loads, src.read_text(encoding="utf-8").splitlines())}
    out = tmp_path / "train.parquet"
    argv = ["prepare", "math", "--input", str(src), "--output", str(out), "--answer-key", "answer"]
    assert main([*argv, "--val-fraction", "0.1", "--max-duals-per-problem", "3", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    summary = summary_of(out)
    print(
        f"{name}: coverage {summary['coverage']:.1%}, {summary['duals_per_row_mean']:.2f} duals per kept row (cap 3)"
    )
    assert f"read {MATH_SETS[name]} rows" in printed and "coverage" in printed
    assert summary["rows_read"] == MATH_SETS[name]
    assert summary["rows_kept"] + sum(summary["rows_skipped"].values()) == summary["rows_read"]
    assert set(summary["rows_skipped"]) <= {"no_dual_question"}
    train, val = read(out), read(tmp_path / "train_val.parquet")
    assert pq.read_schema(out) == pq.read_schema(tmp_path / "train_val.parquet")
    assert len(train) == summary["rows_train"] and len(val) == summary["rows_val"] == round(
        0.1 * summary["rows_kept"]
    )
    assert {r["extra_info"]["split"] for r in train} == {"train"} and {
        r["extra_info"]["split"] for r in val
    } == {"val"}
    indices = [r["extra_info"]["index"] for r in train + val]
    assert len(set(indices)) == len(indices) == summary["rows_kept"]
    assert sum(len(r["extra_info"]["dupo"]["duals"]) for r in train + val) == summary["dual_questions"]
    for row in train + val:
        info = row["extra_info"]
        source = gold[info["id"]]
        assert row["data_source"] == f"dupo/math/{name}" and row["agent_name"] == "dupo_agent"
        assert row["ability"] == "math"
        assert row["reward_model"] == {"style": "rule", "ground_truth": source["answer"]}
        assert row["prompt"][0]["content"].startswith(source["problem"])
        task, duals = task_from_info(info["dupo"])
        assert task.name == "math" and 1 <= len(duals) <= 3
        assert all(d.masked_text.replace(d.variable, "", 1) != source["problem"] for d in duals)


def test_same_seed_same_bytes(shared_data: Path, tmp_path: Path) -> None:
    src = str(shared_data / "math" / "math500_test.jsonl")

    def run(folder: str, seed: str) -> tuple[bytes, bytes]:
        out = tmp_path / folder / "m.parquet"
        argv = [
            "prepare",
            "math",
            "--input",
            src,
            "--output",
            str(out),
            "--seed",
            seed,
            "--val-fraction",
            "0.2",
        ]
        assert main([*argv, "--no-progress"]) == 0
        return out.read_bytes(), (tmp_path / folder / "m_val.parquet").read_bytes()

    first, again, other = run("a", "7"), run("b", "7"), run("c", "8")
    assert first == again
    assert first[0] != other[0] and first[1] != other[1]
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temporary file left behind


@pytest.fixture
def messy_input(shared_data: Path, tmp_path: Path) -> Path:
    real = (shared_data / "math" / "gsm8k_test.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    lines = (
        real[:2]
        + [
            '{"id": "broken", "problem": "Tom has 3 apples',
            json.dumps({"id": "no-problem", "question": "What is 2 + 2?"}),
            json.dumps({"id": "empty", "problem": "   "}),
            json.dumps({"id": "list", "problem": ["Tom has 3 apples."]}),
            json.dumps({"id": "no-numbers", "problem": "What is the capital of France?"}),
            "[1, 2, 3]",
        ]
        + real[2:]
    )
    path = tmp_path / "messy.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_rows_are_counted(messy_input: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.parquet"
    assert main(["prepare", "math", "--input", str(messy_input), "--output", str(out), "--no-progress"]) == 0
    summary = summary_of(out)
    assert summary["rows_read"] == 11 and summary["rows_kept"] == 5
    assert summary["rows_skipped"] == {
        "bad_json": 1,
        "bad_problem": 1,
        "empty_problem": 1,
        "missing_problem": 1,
        "no_dual_question": 1,
        "not_an_object": 1,
    }
    assert any("row 3" in e and "'problem'" in e for e in summary["errors"])
    assert [r["extra_info"]["id"] for r in read(out)] == [f"gsm8k-test-000{i}" for i in range(5)]
    assert "rows skipped:" in capsys.readouterr().out


def test_strict_stops_and_writes_nothing(messy_input: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous run")
    argv = ["prepare", "math", "--input", str(messy_input), "--output", str(out), "--strict", "--no-progress"]
    assert main([*argv, "--overwrite"]) == 1  # may replace it, yet --strict stops before touching it
    assert "messy.jsonl:3" in capsys.readouterr().err
    assert out.read_bytes() == b"previous run" and not Path(f"{out}.summary.json").exists()


def test_input_and_option_errors(shared_data: Path, tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "o.parquet")
    assert main(["prepare", "math", "--input", str(tmp_path / "nope.jsonl"), "--output", out]) == 2
    assert "input not found" in capsys.readouterr().err
    flores = shared_data / "translation" / "flores_devtest" / "eng_Latn.txt"
    argv = ["prepare", "translation", "--input", str(flores), "--output", out, "--src-lang", "eng_Latn"]
    assert main([*argv, "--tgt-lang", "xxx_Yyyy"]) == 2
    assert "unknown language code 'xxx_Yyyy'" in capsys.readouterr().err
    assert main(["prepare", "task", "--name", "nope", "--input", str(flores), "--output", out]) == 2
    assert "unknown DuPO task 'nope'" in capsys.readouterr().err
    gsm8k = str(shared_data / "math" / "gsm8k_test.jsonl")
    with pytest.raises(SystemExit) as stop:  # checked by argparse, at the door
        main(["prepare", "math", "--input", gsm8k, "--output", out, "--val-fraction", "1.5"])
    assert stop.value.code == 2 and "--val-fraction: must be a number in [0, 1)" in capsys.readouterr().err


@pytest.mark.parametrize(("src", "tgt"), [("eng_Latn", "zho_Hans"), ("deu_Latn", "fra_Latn")])
def test_prepare_translation_directions(src: str, tgt: str, shared_data: Path, tmp_path: Path) -> None:
    flores = shared_data / "translation" / "flores_devtest"
    names = {
        "eng_Latn": "English",
        "zho_Hans": "Chinese (Simplified)",
        "deu_Latn": "German",
        "fra_Latn": "French",
    }
    out = tmp_path / "t.parquet"
    argv = [
        "prepare",
        "translation",
        "--input",
        str(flores / f"{src}.txt"),
        "--reference",
        str(flores / f"{tgt}.txt"),
    ]
    assert main([*argv, "--src-lang", src, "--tgt-lang", tgt, "--output", str(out), "--no-progress"]) == 0
    rows = read(out)
    sources = (flores / f"{src}.txt").read_text(encoding="utf-8").splitlines()
    refs = (flores / f"{tgt}.txt").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1012
    for row in rows[:50]:
        i = row["extra_info"]["index"]
        prompt = row["prompt"][0]["content"]
        assert f"{names[src]} text into {names[tgt]}" in prompt and prompt.endswith(sources[i])
        assert row["data_source"] == f"dupo/translation/{src}-{tgt}"
        assert (row["extra_info"]["src_lang"], row["extra_info"]["tgt_lang"]) == (src, tgt)
        assert row["extra_info"]["reference"] == row["reward_model"]["ground_truth"] == refs[i]
        task, (dual,) = task_from_info(row["extra_info"]["dupo"])
        assert dual.value == sources[i] and dual.masked_text == dual.variable == ""
        back = task.dual_messages(dual, refs[i])[0]["content"]
        assert f"{names[tgt]} text into {names[src]}" in back


def test_prepare_span(shared_data: Path, tmp_path: Path) -> None:
    qa, doc = tmp_path / "qa.parquet", tmp_path / "doc.parquet"
    gsm8k = str(shared_data / "math" / "gsm8k_test.jsonl")
    argv = [
        "prepare",
        "span",
        "--input",
        gsm8k,
        "--output",
        str(qa),
        "--text-key",
        "problem",
        "--answer-key",
        "answer",
    ]
    assert main([*argv, "--no-progress"]) == 0
    row = read(qa)[0]
    assert row["reward_model"]["ground_truth"] == "18" and row["prompt"][0]["content"].startswith(
        "Answer the following"
    )
    assert len(row["extra_info"]["dupo"]["duals"]) == 4  # default cap
    flores = str(shared_data / "translation" / "flores_devtest" / "eng_Latn.txt")
    argv = [
        "prepare",
        "span",
        "--input",
        flores,
        "--output",
        str(doc),
        "--mode",
        "document",
        "--lines-per-document",
        "5",
    ]
    assert main([*argv, "--no-progress"]) == 0
    summary = summary_of(doc)
    assert summary["rows_read"] == 203 and summary["params"] == {"mode": "document", "similarity": "rouge_l"}


def test_prepare_two_sum(tmp_path: Path) -> None:
    out = tmp_path / "ts.parquet"
    argv = ["prepare", "two-sum", "--output", str(out), "--num-problems", "300", "--operand-max", "49"]
    assert main([*argv, "--seed", "3", "--val-fraction", "0.2", "--no-progress"]) == 0
    train, val = read(out), read(tmp_path / "ts_val.parquet")
    assert (len(train), len(val)) == (240, 60)
    pairs = lambda rows: {r["prompt"][0]["content"] for r in rows}  # noqa: E731
    assert not pairs(train) & pairs(val)
    row = train[0]
    a, b = row["prompt"][0]["content"].rstrip("=").split("+")
    assert row["reward_model"]["ground_truth"] == str(int(a) + int(b))
    assert row["extra_info"]["dupo"]["duals"] == [
        {"masked_text": f"{a}+V=", "variable": "V", "value": b, "template": 0}
    ]
    assert row["extra_info"]["dupo"]["params"] == {"strict": False, "hide": "b"} and row["ability"] == "arithmetic"
    again = tmp_path / "again.parquet"
    assert (
        main(
            ["prepare", "two-sum", "--output", str(again), *argv[4:], "--seed", "3", "--val-fraction", "0.2"]
        )
        == 0
    )
    assert again.read_bytes() == out.read_bytes()
    both = tmp_path / "both.parquet"
    assert main([*argv[:3], str(both), *argv[4:], "--seed", "3", "--val-fraction", "0.2", "--hide", "both",
                 "--no-progress"]) == 0
    ensemble = read(both)[0]
    assert ensemble["prompt"] == row["prompt"] and ensemble["extra_info"]["dupo"]["params"]["hide"] == "both"
    assert ensemble["extra_info"]["dupo"]["duals"] == [
        {"masked_text": f"{a}+V=", "variable": "V", "value": b, "template": 0},
        {"masked_text": f"{b}+V=", "variable": "V", "value": a, "template": 0},
    ]


def test_rows_load_through_verls_rlhfdataset(
    shared_data: Path, tmp_path: Path, tiny_model_path: Path
) -> None:
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    flores = shared_data / "translation" / "flores_devtest"
    files = {
        "math": ["math", "--input", str(shared_data / "math" / "amc2023.jsonl"), "--answer-key", "answer"],
        "translation": [
            "translation",
            "--input",
            str(flores / "eng_Latn.txt"),
            "--reference",
            str(flores / "jpn_Jpan.txt"),
            "--src-lang",
            "eng_Latn",
            "--tgt-lang",
            "jpn_Jpan",
        ],
        "two_sum": ["two-sum", "--num-problems", "50"],
    }
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    config = OmegaConf.create(
        {
            "max_prompt_length": 8192,
            "filter_overlong_prompts": True,
            "cache_dir": str(tmp_path / "cache"),
            "filter_overlong_prompts_workers": 1,
        }
    )
    for name, args in files.items():
        out = tmp_path / f"{name}.parquet"
        assert main(["prepare", args[0], "--output", str(out), "--no-progress", *args[1:]]) == 0
        written = read(out)[:60]
        dataset = RLHFDataset(data_files=str(out), tokenizer=tokenizer, config=config, max_samples=60)
        assert len(dataset) == len(written)
        for i, row in enumerate(written):
            item = dataset[i]
            assert item["raw_prompt"] == row["prompt"]
            assert item["extra_info"]["dupo"] == row["extra_info"]["dupo"]
            assert item["agent_name"] == "dupo_agent" and item["index"] == row["extra_info"]["index"]
            task, duals = task_from_info(item["extra_info"]["dupo"])
            assert task.name == name and duals


def test_keep_unmaskable_and_dedup(shared_data: Path, tmp_path: Path) -> None:
    lines = (shared_data / "math" / "amc2023.jsonl").read_text(encoding="utf-8").splitlines()
    src = tmp_path / "amc_twice.jsonl"
    src.write_text("\n".join(lines + lines[:10]) + "\n", encoding="utf-8")
    out = tmp_path / "all.parquet"
    argv = ["prepare", "math", "--input", str(src), "--output", str(out), "--keep-unmaskable", "--dedup"]
    assert main([*argv, "--no-progress"]) == 0
    summary = summary_of(out)
    assert summary["rows_read"] == 50 and summary["rows_skipped"] == {"duplicate": 10}
    assert summary["rows_kept"] == 40 and summary["rows_with_duals"] == 36
    rows = read(out)
    assert sum(not r["extra_info"]["dupo"]["duals"] for r in rows) == 4
    assert (
        pq.read_schema(out)
        .field("extra_info")
        .type.field("dupo")
        .type.field("duals")
        .type.value_type.num_fields
        == 4
    )
