"""compute_score: verl's custom reward signature on real GSM8K, MATH-500 and FLORES rows."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from reward_fns import compute_score
from reward_fns import scoring as reward_scoring
from reward_fns.text import bleu, chrf


def _first_rows(path: Path, n: int) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(n), f, strict=False)]


def test_gsm8k_reference_solutions_score_one_and_wrong_answers_zero(shared_data):
    for row in _first_rows(shared_data / "math" / "gsm8k_test.jsonl", 30):
        right = compute_score("openai/gsm8k", row["solution"], row["answer"])
        assert right == {"score": 1.0, "acc": 1.0, "pred": row["solution"].rsplit("####", 1)[1].strip(),
                         "verify_timeouts": 0.0, "gold_missing": 0.0}
        wrong = compute_score("openai/gsm8k", f"So the total is \\boxed{{{int(row['answer']) + 1}}}.", row["answer"])
        assert wrong["score"] == 0.0 and wrong["acc"] == 0.0 and set(wrong) == {"score", "acc", "pred", "verify_timeouts", "gold_missing"}


def test_task_from_extra_info_wins_over_data_source(shared_data):
    rows = _first_rows(shared_data / "math" / "math500_test.jsonl", 20)
    for row in rows:
        out = compute_score("some/custom_source", row["solution"], row["answer"], {"dupo": {"task": "math"}})
        assert out["score"] == 1.0, (row["id"], out)
    assert compute_score("HuggingFaceH4/MATH-500", "no answer here", rows[0]["answer"]) == {
        "score": 0.0, "acc": 0.0, "pred": "", "verify_timeouts": 0.0, "gold_missing": 0.0}


def test_math_gold_may_be_a_number_or_a_list():
    assert compute_score("gsm8k", "#### 1,200", 1200)["score"] == 1.0
    assert compute_score("aime", "\\boxed{25}", ["24", "25"])["score"] == 1.0
    assert compute_score("aime", "\\boxed{25}", [None, "25"]) == {
        "score": 1.0, "acc": 1.0, "pred": "25", "verify_timeouts": 0.0, "gold_missing": 0.0}


@pytest.mark.parametrize("gold", [None, "", "   ", [], [None, ""], {"a": 1}, b"7", float("nan"), "nan", "NaN",
                                  float("inf"), True])
def test_a_row_without_a_usable_gold_label_is_counted_not_hidden(gold, caplog, monkeypatch):
    """A missing gold label is no wrong answer: it scores 0 but says so in gold_missing (and the log),
    and pandas' NaN for a missing answer never matches an answer of "nan"."""
    monkeypatch.setattr(reward_scoring, "_warned", set())
    for answer in ("\\boxed{7}", "\\boxed{nan}", "\\boxed{inf}"):
        out = compute_score("openai/gsm8k", answer, gold)
        assert out["score"] == out["acc"] == 0.0 and out["gold_missing"] == 1.0, (gold, answer, out)
    assert caplog.text.count("no usable gold label") == 1  # logged once per source and type of value
    assert compute_score("openai/gsm8k", "\\boxed{7}", 7)["gold_missing"] == 0.0


@pytest.mark.parametrize("gold", [None, "", "  ", 7, [7], [" ", None], []])
def test_a_translation_or_span_row_without_a_reference_is_counted(gold):
    out = compute_score("flores", "Le chat.", gold, {"tgt_lang": "fra_Latn"})
    assert out == {"score": 0.0, "bleu": 0.0, "chrf": 0.0, "gold_missing": 1.0}
    span = compute_score("x", "Paris", gold, {"dupo": {"task": "span"}})
    assert span == {"score": 0.0, "acc": 0.0, "gold_missing": 1.0}


@pytest.mark.parametrize("wrap", [list, tuple, np.array])
def test_several_references_score_as_the_best_of_them(wrap):
    """A list column comes back from parquet as a numpy array; it was counted as no reference."""
    refs = wrap(["Le chien dort.", "Le chat dort."])
    out = compute_score("flores", "Le chat dort.", refs, {"tgt_lang": "fra_Latn"})
    assert out["chrf"] == out["score"] == 1.0 and out["bleu"] == 1.0 and out["gold_missing"] == 0.0
    span = compute_score("x", "Paris", wrap(["London", "Paris"]), {"dupo": {"task": "span"}})
    assert span["score"] == 1.0 and span["gold_missing"] == 0.0


@pytest.mark.parametrize("gold", [10**5000, float("inf"), [10**5000]], ids=["huge", "inf", "huge_list"])
def test_a_gold_label_python_cannot_print_is_counted_as_missing(gold):
    out = compute_score("openai/gsm8k", "\\boxed{5}", gold)
    assert out["score"] == 0.0 and out["gold_missing"] == 1.0


@pytest.mark.parametrize("gold", [Decimal("5"), Fraction(5), np.int64(5), np.float32(5.0)])
def test_a_number_gold_label_of_any_numeric_type_is_read(gold):
    assert compute_score("openai/gsm8k", "\\boxed{5}", gold) | {"pred": ""} == {
        "score": 1.0, "acc": 1.0, "pred": "", "verify_timeouts": 0.0, "gold_missing": 0.0}


def test_a_user_task_is_validated_by_its_own_gold_score(caplog):
    """compute_score raised for every task it did not know, though the task documents gold_score."""
    from dupo_verl.tasks import register_task
    from dupo_verl.tasks.two_sum import TwoSumTask

    @register_task("scoring_user_exact")
    class Exact(TwoSumTask):
        def gold_score(self, response, ground_truth):
            return {"good": 1.0, "half": 0.5, "nan": float("nan")}.get(response.strip(), 0.0)

    info = {"dupo": {"task": "scoring_user_exact", "params": {}}}
    assert compute_score("mine", "good", "ref", info) == {"score": 1.0, "acc": 1.0, "gold_missing": 0.0}
    assert compute_score("mine", "half", ["ref", "other"], info)["score"] == 0.5
    assert compute_score("mine", "nan", "ref", info)["score"] == 0.0 and "not a number in [0, 1]" in caplog.text
    assert compute_score("mine", "good", None, info) == {"score": 0.0, "acc": 0.0, "gold_missing": 1.0}

    @register_task("scoring_user_no_gold")
    class NoGold(TwoSumTask):
        def gold_score(self, response, ground_truth):
            return None

    with pytest.raises(ValueError, match="task 'scoring_user_no_gold' has no gold_score"):
        compute_score("mine", "good", "ref", {"dupo": {"task": "scoring_user_no_gold", "params": {}}})


def test_two_sum_is_judged_like_math():
    out = compute_score("dupo/two_sum", "17 + 25 = 42, so the sum is \\boxed{42}", "42")
    assert out == {"score": 1.0, "acc": 1.0, "pred": "42", "verify_timeouts": 0.0, "gold_missing": 0.0}
    assert compute_score("x", "\\boxed{41}", "42", {"dupo": {"task": "two_sum"}})["score"] == 0.0
    inverse = {"dupo": {"task": "two_sum_inverse"}}  # prepare writes these rows too
    assert compute_score("x", "so \\boxed{25}", "25", inverse)["score"] == 1.0
    assert compute_score("x", "so \\boxed{24}", "25", inverse)["score"] == 0.0


def test_span_rows_are_scored_with_the_tasks_similarity():
    """The span task's gold score and compute_score agree (validation measures what training rewards)."""
    from dupo_verl.tasks import get_task

    for mode, params in (("question", {}), ("document", {}), ("question", {"similarity": "rouge_l"})):
        task = get_task("span", mode=mode, **params)
        info = {"dupo": {"task": "span", "params": task.params}}
        for reply, gold in (("<think>hm</think> Paris", "Paris"), ("the city of Paris", "Paris"),
                            ("A cat sat on a mat.", "The cat sat on the mat."), ("London", "Paris")):
            out = compute_score("dupo/span", reply, gold, info)
            assert out["score"] == out["acc"] == task.gold_score(reply, gold), (mode, params, reply, out)
    assert compute_score("x", "Paris", "Paris", {"dupo": {"task": "span"}})["score"] == 1.0


@pytest.mark.parametrize(
    "extra_info", [{"dupo": {"task": "translation", "tgt_lang": "zho_Hans"}}, {"tgt_lang": "zh"}]
)
def test_translation_scores_with_the_target_language_tokenizer(shared_data, extra_info):
    zh = (shared_data / "translation" / "flores_devtest" / "zho_Hans.txt").read_text(encoding="utf-8").splitlines()
    ref = zh[0]
    hyp = ref[:5] + "猫" + ref[6:]
    out = compute_score("facebook/flores", f"<think>翻译</think>{hyp}", ref, extra_info)
    assert set(out) == {"score", "bleu", "chrf", "gold_missing"}
    assert out["bleu"] == bleu(hyp, ref, "zh") != bleu(hyp, ref, "eng_Latn")
    assert out["score"] == out["chrf"] == chrf(hyp, ref)
    assert compute_score("wmt24", ref, ref, extra_info)["score"] == 1.0


def test_unknown_sources_and_tasks_are_clear_errors():
    with pytest.raises(ValueError, match="cannot tell the task of data_source 'squad'"):
        compute_score("squad", "x", "y")
    with pytest.raises(ValueError, match="no gold-label scorer for task 'paraphrase'"):
        compute_score("gsm8k", "x", "y", {"dupo": {"task": "paraphrase"}})


def test_translation_validation_reads_the_translation_the_reward_reads():
    """A "Translation:" label or quotes around the reply are cut, as the task's gold score cuts them."""
    from dupo_verl.tasks import get_task

    task = get_task("translation", src_lang="eng_Latn", tgt_lang="fra_Latn")
    info = {"dupo": {"task": "translation", "tgt_lang": "fra_Latn", "params": task.params}}
    ref = "Le chat est assis sur le tapis."
    for reply in (f"Translation: {ref}", f"French: «{ref}»", f"<think>x</think>\n\"{ref}\""):
        out = compute_score("flores", reply, ref, info)
        assert out["chrf"] == task.gold_score(reply, ref) == 1.0, (reply, out)
