"""Tasks decide when two primal answers are the same answer (filter and rerank group by it)."""

from dupo_verl.tasks import get_task


def test_math_groups_equal_answers_written_differently():
    task = get_task("math")
    assert task.answers_equal("1/2", "\\frac{1}{2}")
    assert task.answers_equal("1,200", "1200")
    assert not task.answers_equal("1/2", "2")


def test_two_sum_groups_integers_and_default_is_normalised_text():
    assert get_task("two_sum").answers_equal("47", " 47")
    assert not get_task("two_sum").answers_equal("47", "48")
    translation = get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn")
    assert translation.answers_equal("Guten  Tag", "Guten Tag")
    assert not translation.answers_equal("Guten Tag", "Hallo")
