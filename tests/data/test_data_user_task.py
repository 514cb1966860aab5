"""A task registered from outside dupo_verl: the README example, run end to end."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dupo_verl.cli import main
from dupo_verl.data import PrepareConfig, RawRecord, RowOptions, build_rows, rows_to_table
from dupo_verl.scoring import Completion, DualOptions, score_response, task_from_info
from dupo_verl.tasks import Decomposition, DualQuestion, DualTask, get_task, register_task, task_names

README = Path(__file__).resolve().parents[2] / "dupo_verl" / "tasks" / "README.md"


@register_task("test_first_number")
class FirstNumber(DualTask):
    """A task without parameters, defined in this test module: hide the first digit run."""

    def decompose(self, example, seed=0):
        m = re.search(r"\d+", example["text"])
        if m is None:
            return Decomposition(skipped={"no_number": 1})
        masked = example["text"][: m.start()] + "N" + example["text"][m.end() :]
        return Decomposition(duals=[DualQuestion(masked_text=masked, variable="N", value=m.group(0))])

    def primal_messages(self, example):
        return [{"role": "user", "content": example["text"]}]

    def extract_primal_answer(self, response):
        return response.strip() or None

    def dual_messages(self, dual, primal_answer):
        return [{"role": "user", "content": f"{dual.masked_text} -> {primal_answer}. N?"}]

    def score_reconstruction(self, dual, dual_response):
        return float(dual_response.strip() == dual.value)


@pytest.fixture(scope="module")
def user_package(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The README's example module written as a package of its own and put on sys.path."""
    code = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    root = tmp_path_factory.mktemp("user_site")
    (root / "my_pkg").mkdir()
    (root / "my_pkg" / "__init__.py").write_text("", encoding="utf-8")
    (root / "my_pkg" / "dupo_tasks.py").write_text(code, encoding="utf-8")
    sys.path.insert(0, str(root))
    yield "my_pkg.dupo_tasks"
    sys.path.remove(str(root))


def test_readme_task_through_the_cli(user_package: str, tmp_path: Path) -> None:
    src = tmp_path / "sentences.jsonl"
    src.write_text(
        '{"text": "The cat sat on the mat"}\n{"text": "Hi"}\n{"text": "Dogs bark loudly"}\n', encoding="utf-8"
    )
    out = tmp_path / "lw.parquet"
    argv = [
        "prepare",
        "task",
        "--import",
        user_package,
        "--name",
        "last_word",
        "--param",
        "placeholder=[GAP]",
    ]
    assert main([*argv, "--input", str(src), "--output", str(out), "--no-progress"]) == 0
    assert "last_word" in task_names()
    rows = pq.read_table(out).to_pylist()
    assert [r["extra_info"]["dupo"]["duals"][0]["value"] for r in rows] == ["mat", "loudly"]
    assert rows[0]["extra_info"]["dupo"]["params"] == {"placeholder": "[GAP]"}
    assert rows[0]["ability"] == "paraphrase" and rows[0]["data_source"] == "dupo/last_word/sentences"
    task, duals = task_from_info(rows[0]["extra_info"]["dupo"])
    assert task.placeholder == "[GAP]" and duals[0].masked_text == "The cat sat on the [GAP]"


async def test_user_task_is_scored_by_the_shared_judgement(user_package: str) -> None:
    __import__(user_package)
    task = get_task("last_word")
    duals = task.decompose({"text": "The cat sat on the mat"}).duals

    async def generate(messages, *, n, temperature, top_p, max_tokens, session_id):
        guess = "mat" if "lies on a rug" in messages[0]["content"] else "sofa"
        return [Completion(text=guess, num_tokens=1)] * n

    options = DualOptions(dual_samples=2)
    good = await score_response(task, duals, "A cat lies on a rug", generate, options, "s0")
    bad = await score_response(task, duals, "Something else", generate, options, "s1")
    assert (good.reward, bad.reward) == (1.0, 0.0)


def test_task_without_params_round_trips(tmp_path: Path) -> None:
    task = get_task("test_first_number")
    config = PrepareConfig(task=task, rows=RowOptions(data_source="dupo/test"), progress=False)
    records = [RawRecord(0, {"text": "Tom has 12 pens"}), RawRecord(1, {"text": "no digits"})]
    rows, summary = build_rows(records, config)
    assert summary.rows_skipped == {"no_dual_question": 1} and summary.candidates_skipped == {"no_number": 1}
    pq.write_table(rows_to_table(rows), tmp_path / "fn.parquet")  # parquet has no empty struct
    info = pq.read_table(tmp_path / "fn.parquet").to_pylist()[0]["extra_info"]["dupo"]
    assert info["params"] == {"_empty": None}
    rebuilt, (dual,) = task_from_info(info)
    assert isinstance(rebuilt, FirstNumber) and dual.value == "12" and dual.masked_text == "Tom has N pens"


def test_a_name_cannot_be_taken_twice() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_task("math")
        class Impostor(FirstNumber):
            pass
