"""A user's own task, as an outside probe wrote them: every mistake in its declaration, registration,
module or hooks is one line naming the task (or a counted skip naming the row), never a traceback
per sample, a silent 0 or 1, or rows that training rebuilds as another task.
"""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from scoring_fixtures import TASK, EchoTask, ScriptedGenerate, duals, scores_reply

from dupo_verl.cli import main
from dupo_verl.scoring import DualOptions, score_response, task_from_info
from dupo_verl.tasks import DualReply, get_task, register_task
from dupo_verl.verl.rows import check_rows_dual_mode
from reward_fns.math import extract_answer

USER_TASK = '''
from dupo_verl.tasks import Decomposition, DualQuestion, DualTask, register_task

class Base(DualTask):
    """One dual question per row: hide the text; `mode` picks what decompose gives."""
    def __init__(self, mode="ok"):
        super().__init__(mode=mode)
        self.mode = mode
    def decompose(self, example, seed=0):
        text = example["text"]
        fields = {"masked_text": "x V", "variable": "V", "value": text, "template": 0}
        fields.update(BAD.get(self.mode, {}))
        if self.mode == "as_dict":
            return Decomposition(duals=[fields])
        skipped = {"odd": -3} if self.mode == "skipped_negative" else {}
        return Decomposition(duals=[DualQuestion(**fields)], skipped=skipped)
    def primal_messages(self, example):
        return MESSAGES.get(self.mode, [{"role": "user", "content": "BASE: " + example["text"]}])
    def ground_truth(self, example):
        return GOLD.get(self.mode)
    def data_source(self, stem):
        return None if self.mode == "source_none" else "mine/" + stem
    def extract_primal_answer(self, response):
        return response
    def dual_messages(self, dual, answer):
        return [{"role": "user", "content": answer}]
    def score_reconstruction(self, dual, text):
        return 1.0

MESSAGES = {"content_none": [{"role": "user", "content": None}], "role_number": [{"role": 5, "content": "x"}],
            "no_messages": [], "text_prompt": "hello"}
GOLD = {"gold_zero": 0, "gold_false": False, "gold_list": [1, 2], "gold_nan": float("nan"), "gold_text": "42"}
BAD = {"value_none": {"value": None}, "value_blank": {"value": "  "}, "value_int": {"value": 5},
       "masked_none": {"masked_text": None}, "template_neg": {"template": -1}, "template_str": {"template": "1"},
       "template_big": {"template": 3}}

@register_task("contract_base")
class Registered(Base):
    dual_templates = 2

from dupo_verl.tasks.inputs import InputField

@register_task("contract_int")
class WithInt(Registered):
    input_fields = {"text": InputField("text"), "n": InputField("n", kind="int")}

class Sub(Registered):
    """Not registered: named `module:Sub`, it must not be recorded as its parent."""
    def primal_messages(self, example):
        return [{"role": "user", "content": "SUB: " + example["text"]}]
    def score_reconstruction(self, dual, text):
        return 0.25
'''


@pytest.fixture(scope="module")
def user_module(tmp_path_factory) -> str:
    """The user's module, written and importable once (its task registers on the first import)."""
    folder = tmp_path_factory.mktemp("user_tasks")
    name = "contract_user_tasks"
    (folder / f"{name}.py").write_text(USER_TASK, encoding="utf-8")
    sys.path.insert(0, str(folder))
    yield name
    sys.path.remove(str(folder))


def prepare(tmp_path: Path, module: str, name: str, *extra: str) -> int:
    (tmp_path / "in.jsonl").write_text('{"text": "hello world"}\n{"text": "foo bar"}\n', encoding="utf-8")
    return main(["prepare", "task", "--import", module, "--name", name, "--input", str(tmp_path / "in.jsonl"),
                 "--output", str(tmp_path / "out.parquet"), "--no-progress", *extra])


def test_an_unregistered_subclass_is_recorded_by_its_path_and_rebuilt_as_itself(tmp_path, user_module):
    """It was recorded as its registered parent: training rebuilt the parent (score 1.0, not 0.25)."""
    assert prepare(tmp_path, user_module, f"{user_module}:Sub") == 0
    row = pd.read_parquet(tmp_path / "out.parquet").iloc[0]
    assert row["prompt"][0]["content"] == "SUB: hello world"
    info = row["extra_info"]["dupo"]
    assert info["task"] == f"{user_module}:Sub"
    task, questions = task_from_info(info)
    assert type(task).__name__ == "Sub" and task.score_reconstruction(questions[0], "x") == 0.25
    assert get_task("contract_base").name == "contract_base"  # the parent keeps its own name


@pytest.mark.parametrize(
    ("mode", "field"),
    [("value_none", "'value'"), ("value_blank", "'value'"), ("masked_none", "'masked_text'"),
     ("template_neg", "'template'"), ("template_str", "'template'"), ("template_big", "must be below 2")],
)
def test_prepare_refuses_a_dual_question_training_would_refuse(tmp_path, user_module, mode, field, capsys):
    """prepare wrote them (exit 0) and every training step then failed on the row."""
    assert prepare(tmp_path, user_module, "contract_base", "--param", f"mode={mode}") == 1
    out = capsys.readouterr()
    assert "task_error 2" in out.out and not (tmp_path / "out.parquet").exists()
    summary = (tmp_path / "out.parquet.summary.json").read_text(encoding="utf-8")
    assert "row 0" in summary and field in summary, summary[:600]


def test_a_numeric_dual_value_is_written_as_text(tmp_path, user_module):
    """pyarrow failed on it with "Expected bytes, got a 'int' object", naming nothing."""
    assert prepare(tmp_path, user_module, "contract_base", "--param", "mode=value_int") == 0
    info = pd.read_parquet(tmp_path / "out.parquet").iloc[0]["extra_info"]["dupo"]
    assert info["duals"][0]["value"] == "5"
    assert task_from_info(info)[1][0].value == "5"


@pytest.mark.parametrize(
    ("source", "message"),
    [("raise RuntimeError('import-time failure')", "RuntimeError: import-time failure"),
     ("def broken(:\n    pass", "SyntaxError"),
     ("from dupo_verl.tasks import register_task\n@register_task('plain_x')\nclass Plain:\n    pass",
      "is not a DualTask subclass")],
)
def test_a_module_that_fails_to_import_is_one_line(tmp_path, monkeypatch, capsys, source, message):
    name = f"broken_{abs(hash(source)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert prepare(tmp_path, name, "x") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and f"importing task module {name!r} failed" in err[0] and message in err[0], err


def test_register_task_refuses_what_is_not_a_task_or_a_name():
    with pytest.raises(TypeError, match="is not a DualTask subclass"):
        register_task("not_a_task")(type("Plain", (), {}))
    for bad in ("", "  ", "mod:Cls", 5):
        with pytest.raises(TypeError, match="task name"):
            register_task(bad)(EchoTask)


@pytest.mark.parametrize(
    ("attr", "value"),
    [("max_answer_chars", None), ("max_answer_chars", "10"), ("max_answer_chars", math.nan), ("max_answer_chars", 0),
     ("max_answer_chars", -1), ("max_answer_chars", True), ("dual_templates", 0), ("dual_templates", "two"),
     ("dual_templates", 2.5), ("ability", None), ("name", 5)],
)
def test_a_misdeclared_attribute_stops_the_task_at_build_naming_it(attr, value):
    """max_answer_chars None failed every sample with a traceback; NaN disabled the length guard."""
    cls = type(f"Bad_{attr}", (EchoTask,), {attr: value})
    name = f"contract_bad_{attr}_{abs(hash(repr(value))) % 10**6}"
    if attr != "name":
        register_task(name)(cls)
    else:
        name = f"{__name__}:x"  # not importable: build it directly
    with pytest.raises(TypeError, match=f"attribute {attr!r} must be"):
        cls_task = cls() if attr == "name" else None
        if cls_task is not None:
            cls_task.check_declaration()
        else:
            get_task(name)


def _score(task, reply, n_samples=1, answer="5"):
    generate = ScriptedGenerate(reply)
    options = DualOptions(dual_samples=n_samples, max_retries=0)
    return asyncio.run(asyncio.wait_for(score_response(task, duals(1), answer, generate, options, "s"), 20))


@pytest.mark.parametrize("score", ["nan", "inf", "-inf", "7", "-0.5", "1e400"])
def test_a_similarity_outside_0_1_is_a_counted_dual_error_not_a_verdict(score):
    """NaN became 0.0 and 7 became 1.0, silently: each looked like a real verdict."""
    result = _score(get_task(TASK), lambda m, n, a: [type(scores_reply(0)(m, n, a)[0])(score, 3)])
    m = result.metrics
    assert result.reward == 0.0 and m["dupo_dual_errors"] == 1.0 and m["dupo_dual_samples"] == 0.0
    assert m["dupo_dual_missing"] == 1.0


@pytest.mark.parametrize("returned", ["0.7", True, None, [0.5], complex(0.5, 0)])
def test_a_similarity_that_is_not_a_number_is_a_counted_dual_error(returned):
    class Odd(EchoTask):
        def score_reconstruction(self, dual, text):
            return returned

    result = _score(Odd(), scores_reply(0.5))
    assert result.reward == 0.0 and result.metrics["dupo_dual_errors"] == 1.0


def test_good_samples_keep_their_scores_beside_an_unusable_one():
    replies = lambda m, n, a: [type(scores_reply(0)(m, n, a)[0])(s, 3) for s in ("0.5", "nan", "1.0")]  # noqa: E731
    result = _score(get_task(TASK), replies, n_samples=3)
    assert result.reward == pytest.approx(0.75)
    assert result.metrics["dupo_dual_samples"] == 2.0 and result.metrics["dupo_dual_errors"] == 1.0
    assert _score(get_task(TASK), scores_reply(1.0000000000000002)).reward == 1.0  # float error is clipped


@pytest.mark.parametrize("answer", [5, ["5"], b"5"])
def test_a_non_text_primal_answer_is_no_answer(answer):
    class Odd(EchoTask):
        def extract_primal_answer(self, response):
            return answer

    result = _score(Odd(), scores_reply(1.0))
    assert result.reward == 0.0 and result.metrics["dupo_no_answer"] == 1.0


@pytest.mark.parametrize("verdict", ["no", None, "False", [False]])
def test_a_leak_check_that_gives_no_bool_counts_as_a_leak(verdict):
    class Odd(EchoTask):
        def leaks(self, dual, primal_answer):
            return verdict

    result = _score(Odd(), scores_reply(1.0))
    assert result.metrics["dupo_leaks"] == 1.0 and result.reward == 0.0


class _Reply(EchoTask):
    replies: object = None

    def dual_reply(self, dual):
        if isinstance(self.replies, Exception):
            raise self.replies
        return self.replies


@pytest.mark.parametrize(
    ("reply", "message"),
    [("5", "dual_reply must return a DualReply"), (DualReply("", None), "dual_reply must return a DualReply"),
     (DualReply("", "  "), "blank value"), (RuntimeError("cannot reply"), "RuntimeError: cannot reply")],
)
def test_likelihood_mode_stops_at_start_up_on_a_broken_dual_reply_naming_the_row(reply, message):
    name = f"contract_reply_{abs(hash(repr(reply))) % 10**8}"
    register_task(name)(type(name, (_Reply,), {"replies": reply}))
    row = {"data_source": "d", "extra_info": {"index": 7, "dupo": {"task": name, "params": {},
           "duals": [{"masked_text": "q", "variable": "V", "value": "a"}]}}}
    with pytest.raises(ValueError, match=rf"row 0 \(index=7.*{message}"):
        check_rows_dual_mode([row], DualOptions(dual_mode="likelihood"), "train.parquet")


def test_a_dual_reply_of_the_wrong_type_is_a_failed_question_during_scoring():
    """`reply.prefix` was read outside the guard: a traceback on every sample."""
    class Odd(_Reply):
        replies = "5"

    generate = ScriptedGenerate(scores_reply(1.0))
    options = DualOptions(dual_mode="likelihood", max_retries=0)
    result = asyncio.run(score_response(Odd(), duals(1), "5", generate, options, "s"))
    assert result.reward == 0.0 and result.metrics["dupo_dual_errors"] == 1.0 and not generate.calls


@pytest.mark.parametrize(
    "response",
    ["\\boxed{" + ", ".join(map(str, range(1, 400))) + "}", "\\boxed{" + "x" * 1000 + " 42}",
     "\\boxed{7} and finally \\boxed{" + "y" * 1001 + "}"],
)
def test_an_overlong_final_box_is_no_answer_not_a_number_read_out_of_it(response):
    assert extract_answer(response) is None
    assert extract_answer("\\boxed{7} then \\boxed{42}") == "42"


def test_decompose_giving_something_else_than_questions_is_a_counted_skip(tmp_path, user_module, capsys):
    assert prepare(tmp_path, user_module, "contract_base", "--param", "mode=as_dict") == 1
    assert "task_error 2" in capsys.readouterr().out


@pytest.mark.parametrize(("mode", "gold"), [("gold_zero", "0"), ("gold_text", "42"), ("ok", "")])
def test_a_gold_label_hook_is_written_as_given(tmp_path, user_module, mode, gold):
    """A gold answer of 0 was written as "" (`hook(example) or ""`)."""
    assert prepare(tmp_path, user_module, "contract_base", "--param", f"mode={mode}") == 0
    assert pd.read_parquet(tmp_path / "out.parquet").iloc[0]["reward_model"]["ground_truth"] == gold


@pytest.mark.parametrize(
    ("mode", "message"),
    [("gold_false", "gold label must be"), ("gold_list", "gold label must be"), ("gold_nan", "gold label must be"),
     ("content_none", "primal_messages()[0]"), ("role_number", "primal_messages()[0]"),
     ("no_messages", "non-empty list"), ("text_prompt", "non-empty list"), ("skipped_negative", "Decomposition.skipped")],
)
def test_a_hook_output_prepare_would_have_coerced_is_a_counted_task_error(tmp_path, user_module, capsys, mode, message):
    """Written before as the prompt "None", role "5", an empty prompt, gold "[1, 2]" / "nan", a count of -3."""
    assert prepare(tmp_path, user_module, "contract_base", "--param", f"mode={mode}") == 1
    assert "task_error 2" in capsys.readouterr().out
    assert message in (tmp_path / "out.parquet.summary.json").read_text(encoding="utf-8")


def test_a_data_source_hook_giving_no_text_is_one_line(tmp_path, user_module, capsys):
    assert prepare(tmp_path, user_module, "contract_base", "--param", "mode=source_none") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "data_source() must return non-blank text" in err[0]


def test_an_int_field_is_checked(tmp_path, user_module, capsys):
    """kind="int" values were passed on unchecked: {"a": 1}, "seven" and NaN reached the task."""
    rows = ['{"text": "a", "n": 7}', '{"text": "b", "n": " 8 "}', '{"text": "c", "n": "seven"}',
            '{"text": "d", "n": {"a": 1}}', '{"text": "e", "n": NaN}', '{"text": "f", "n": true}', '{"text": "g", "n": 2.5}']
    (tmp_path / "in.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    code = main(["prepare", "task", "--import", user_module, "--name", "contract_int", "--input", str(tmp_path / "in.jsonl"),
                 "--output", str(tmp_path / "out.parquet"), "--no-progress"])
    assert code == 0
    assert "bad_n 5" in capsys.readouterr().out
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 2
