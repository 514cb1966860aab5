"""Inputs a task gets from data or from the model that are not what its types say.

Model output is untrusted: a task's answer and reconstruction methods take anything the scorer
might hand them and never raise. Task params come from data: a language name is pasted into every
prompt, so only a line of text is one. Scripts without spaces between words have no span keyword.
"""

from __future__ import annotations

import pytest

from dupo_verl.tasks import get_task
from dupo_verl.tasks.base import DualQuestion
from dupo_verl.tasks.registry import task_class

NOT_TEXT = [None, b"7", 7, 3.5, ["a"], {"a": 1}, object()]
TASKS = [
    ("translation", {"src_lang": "eng_Latn", "tgt_lang": "fra_Latn"}),
    ("span", {}),
    ("span", {"mode": "document"}),
    ("two_sum", {}),
    ("two_sum_inverse", {}),
    ("math", {}),
]


@pytest.mark.parametrize(("name", "params"), TASKS)
@pytest.mark.parametrize("value", NOT_TEXT, ids=lambda v: type(v).__name__)
def test_answer_methods_take_any_value_and_never_raise(name, params, value):
    task = get_task(name, **params)
    dual = DualQuestion(masked_text="12+[V]=", variable="[V]", value="7")
    assert task.extract_primal_answer(value) is None
    assert task.score_reconstruction(dual, value) == 0.0
    assert task.leaks(dual, value) is False
    assert task.reject_answer(value, [dual]) in (None, *_reasons())


def _reasons() -> tuple[str, ...]:
    from dupo_verl.tasks.base import REJECTION_REASONS

    return tuple(REJECTION_REASONS)


@pytest.mark.parametrize("name", [{"a": []}, ["French"], 5, "  ", "Fr\nench", "x" * 65])
def test_a_language_name_must_be_one_line_of_text(name):
    """`--param 'src_name={"a":[]}'` used to write "Translate the following {'a': []} text" into every prompt."""
    for key in ("src_name", "tgt_name"):
        with pytest.raises(ValueError, match="must be one line of text"):
            get_task("translation", src_lang="eng_Latn", tgt_lang="fra_Latn", **{key: name})
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="qdp_Latn", tgt_name=" Dupish ")
    assert task.tgt_name == "Dupish" and "Dupish" in task.primal_messages({"source": "A cat."})[0]["content"]


@pytest.mark.parametrize(
    "text", ["日本の首都はどこですか？", "東京は、日本のどの地方にありますか？", "ภาษาไทยคืออะไร", "北京是中国的首都吗？"]
)
def test_a_question_without_spaces_between_words_is_a_counted_skip(text):
    """A letter run in Japanese, Chinese or Thai is a phrase, not a keyword: hiding it left the dual
    "[BLANK]？", nothing known. Such questions are skipped with the reason `no_keyword`."""
    result = get_task("span").decompose({"text": text})
    assert result.duals == [] and result.skipped == {"no_keyword": 1}


def test_spaced_scripts_still_have_keywords():
    for text, word in (("What is the capital of France?", "France"), ("한국의 수도는 어디입니까?", "한국의")):
        values = [d.value for d in get_task("span").decompose({"text": text}).duals]
        assert word in values, (text, values)


def test_the_hint_for_a_module_names_the_flag_of_each_command():
    """`prepare task` allows a module with --import, filter/rerank with --task-module."""
    with pytest.raises(KeyError) as info:
        task_class("os:system")
    message = str(info.value)
    assert "prepare task --import os" in message and "--task-module os" in message
    assert "DUPO_TASK_MODULES=os" in message
