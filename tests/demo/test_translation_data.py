"""The translation demo's language pair: deterministic, Dupish word order and agreement, an invertible
lexicon, a detector that tells the two apart, and rows equal to what `dupo-verl prepare translation` writes."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dupo_verl.demo import translation_data as td
from dupo_verl.demo.two_sum_data import read_rows
from dupo_verl.tasks import get_task
from reward_fns.text import chrf

SEEDS = st.integers(min_value=0, max_value=10**6)


def _sentence(seed: int) -> td.Sentence:
    return td.random_sentence(random.Random(seed), relative_rate=0.5)


def test_lexicon_is_invertible_and_foreign():
    lex = td.lexicon()
    stems = list(lex.values())
    assert len(set(stems)) == len(stems) == len(set(lex))  # one stem per lemma, no two lemmas share one
    english = set(td.NOUNS + td.ADJECTIVES + td.TRANSITIVE + td.INTRANSITIVE) | set(td.NUMBERS)
    assert not english & set(stems)
    assert {v: k for k, v in lex.items()}[lex["cat"]] == "cat"
    # every inflected form parses back to one lemma: no stem + suffix is another stem (+ suffix)
    forms = [w for w in td._dupish_words() if w not in (td.THE, td.SOME, td.OBJECT, td.RELATIVE)]
    assert len(forms) == len(set(forms))


def test_the_same_seed_gives_the_same_pairs_and_another_seed_others():
    assert td.sentence_pairs(50, seed=4) == td.sentence_pairs(50, seed=4)
    assert td.sentence_pairs(50, seed=4) != td.sentence_pairs(50, seed=5)
    sources = [s for s, _ in td.sentence_pairs(300, seed=1)]
    assert len(set(sources)) == 300


@settings(max_examples=200, deadline=None)
@given(SEEDS)
def test_dupish_is_sov_with_agreement(seed):
    s = _sentence(seed)
    words = td.dupish(s).rstrip(".").lower().split()
    lex = td.lexicon()
    verb = td.dupish_verb(s.verb, s.tense, s.subject.plural)
    assert words[-1] == verb  # verb last
    assert verb.startswith(lex[s.verb]) and verb.endswith(td.TENSE[s.tense] + (td.VERB_PLURAL if s.subject.plural else ""))
    assert words[0] == lex[s.subject.noun] + (td.NOUN_PLURAL if s.subject.plural else "")  # subject first
    if s.obj is not None:
        assert words[-2] == td.OBJECT  # object phrase closed by `ko`, right before the verb
        obj_noun = lex[s.obj.noun] + (td.NOUN_PLURAL if s.obj.plural else "")
        assert obj_noun in words[:-2]
    for np in (s.subject, s.obj, *( [s.relative[1]] if s.relative else [])):
        if np is not None and np.adjective:  # adjective right after its noun, agreeing in number
            noun = lex[np.noun] + (td.NOUN_PLURAL if np.plural else "")
            adjective = lex[np.adjective] + (td.ADJ_PL if np.plural else td.ADJ_SG)
            assert f"{noun} {adjective}" in " ".join(words)
    assert (td.RELATIVE in words) == (s.relative is not None)


@settings(max_examples=200, deadline=None)
@given(SEEDS)
def test_english_agrees_and_the_detector_tells_the_languages_apart(seed):
    s = _sentence(seed)
    en, dp = td.english(s), td.dupish(s)
    if s.tense == "present" and not s.subject.plural and s.relative is None:
        assert re.search(r"s$", en.rstrip(".").split()[len(td.english_np(s.subject).split())])  # "the cat sees"
    assert td.detect_language(en) == td.ENGLISH_LABEL
    assert td.detect_language(dp) == td.DUPISH_LABEL
    assert chrf(en, dp) < td_copy_threshold()  # a copy of the source is never mistaken for a translation


def td_copy_threshold() -> float:
    from dupo_verl.tasks.translation import DEFAULT_COPY_THRESHOLD

    return DEFAULT_COPY_THRESHOLD


def test_detector_abstains_on_other_text():
    assert td.detect_language("") is None
    assert td.detect_language("Der Hund schläft im Garten.") is None
    assert td.detect_language("1234 !!") is None


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("translation")
    return td.prepare_pairs(out, train=80, heldout=20, seed=2), out


def test_rows_are_what_prepare_translation_writes(prepared):
    (train, heldout), out = prepared
    rows, val = read_rows(train), read_rows(heldout)
    assert len(rows) == 80 and len(val) == 20
    pairs = dict(td.sentence_pairs(100, seed=2))
    for row in rows + val:
        source = row["prompt"][0]["content"].rsplit("\n", 1)[-1]
        assert row["reward_model"]["ground_truth"] == pairs[source]
        assert row["agent_name"] == "dupo_agent"
        params = row["extra_info"]["dupo"]["params"]
        assert params["tgt_lang"] == td.TGT_LANG and params["tgt_name"] == td.TGT_NAME
        assert params["language_check"] == td.DETECTOR
    assert not {r["extra_info"]["id"] for r in rows} & {r["extra_info"]["id"] for r in val}


def test_the_task_of_the_rows_rejects_copies_and_english(prepared):
    (train, _), _ = prepared
    row = read_rows(train)[0]
    from dupo_verl.scoring import task_from_info

    task, duals = task_from_info(row["extra_info"]["dupo"])
    source, reference = duals[0].value, row["reward_model"]["ground_truth"]
    assert task.reject_answer(source, duals) == "near_copy"
    other_english = next(s for s, _ in td.sentence_pairs(50, seed=9) if len(s) > 45)
    assert task.reject_answer(other_english, duals) == "wrong_language"
    assert task.reject_answer(reference, duals) is None
    off = get_task("translation", **{**row["extra_info"]["dupo"]["params"], "language_check": "off",
                                     "copy_threshold": 0.0, "partial_copy_threshold": 0.0})
    assert off.reject_answer(source, duals) is None and off.reject_answer(other_english, duals) is None


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--copy-threshold", "2", "copy_threshold must be a chrF in (0, 1]"),
    ("--copy-threshold", "high", "copy_threshold must be a chrF in (0, 1]"),
    ("--language-check", "nosuchdetector", "unknown language detector"),
])
def test_prepare_translation_names_a_bad_guard_option(tmp_path, capsys, flag, value, message):
    from dupo_verl.cli import main

    raw = td.write_jsonl(td.sentence_pairs(5), tmp_path / "pairs.jsonl")
    args = td.prepare_args(raw, tmp_path / "rows.parquet", 0.2)
    args[args.index("--language-check"):args.index("--language-check") + 2] = []
    assert main([*args, flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "rows.parquet").exists()


def test_prepare_allows_the_detector_module_named_on_its_command_line_only(tmp_path, capsys, monkeypatch):
    """`--language-check module:function` is the operator's choice, so prepare may import it; a row
    naming a module is not (tests/tasks/test_translation_guards.py), and a module that does not
    import is one line."""
    from dupo_verl.cli import main
    from dupo_verl.tasks import registry

    monkeypatch.delenv(registry.TASK_MODULES_ENV, raising=False)
    monkeypatch.setattr(registry, "_ALLOWED_MODULES", set())
    raw = td.write_jsonl(td.sentence_pairs(5), tmp_path / "pairs.jsonl")
    assert main(td.prepare_args(raw, tmp_path / "rows.parquet", 0.2)) == 0
    assert "dupo_verl.demo.translation_data" in registry.allowed_task_modules()
    args = td.prepare_args(raw, tmp_path / "other.parquet", 0.2, language_check="no_such_module_17:detect")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --language-check no_such_module_17:detect: cannot import")
    assert not (tmp_path / "other.parquet").exists()


def test_prepare_translation_guard_options_reach_the_rows(tmp_path):
    from dupo_verl.cli import main

    raw = td.write_jsonl(td.sentence_pairs(10), tmp_path / "pairs.jsonl")
    args = td.prepare_args(raw, tmp_path / "rows.parquet", 0.2, language_check="off")
    assert main([*args, "--copy-threshold", "off"]) == 0
    params = read_rows(tmp_path / "rows.parquet")[0]["extra_info"]["dupo"]["params"]
    assert params["language_check"] == "off" and params["copy_threshold"] == 0.0


@pytest.mark.parametrize(("value", "message"), [
    ("2", "partial_copy_threshold must be a share in (0, 1]"),
    ("half", "partial_copy_threshold must be a share in (0, 1]"),
    ("nan", "partial_copy_threshold must be a share in (0, 1]"),
])
def test_prepare_translation_names_a_bad_partial_copy_threshold(tmp_path, capsys, value, message):
    from dupo_verl.cli import main

    raw = td.write_jsonl(td.sentence_pairs(5), tmp_path / "pairs.jsonl")
    args = td.prepare_args(raw, tmp_path / "rows.parquet", 0.2)
    assert main([*args, "--partial-copy-threshold", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "rows.parquet").exists()


@pytest.mark.parametrize(("value", "stored"), [("off", 0.0), ("0", 0.0), ("0.35", 0.35), (None, 0.2)])
def test_prepare_translation_partial_copy_threshold_reaches_the_rows(tmp_path, value, stored):
    from dupo_verl.cli import main
    from dupo_verl.tasks.translation import DEFAULT_PARTIAL_COPY_THRESHOLD

    raw = td.write_jsonl(td.sentence_pairs(10), tmp_path / "pairs.jsonl")
    args = td.prepare_args(raw, tmp_path / "rows.parquet", 0.2)
    assert main([*args, *(["--partial-copy-threshold", value] if value else [])]) == 0
    params = read_rows(tmp_path / "rows.parquet")[0]["extra_info"]["dupo"]["params"]
    assert params["partial_copy_threshold"] == stored and (value or stored == DEFAULT_PARTIAL_COPY_THRESHOLD)
    assert get_task("translation", **params).partial_copy_threshold == (stored or None)


@pytest.mark.parametrize(("value", "stored"), [(None, 40), ("0", 0), ("12", 12)])
def test_prepare_translation_language_check_min_letters_reaches_the_rows(tmp_path, value, stored):
    from dupo_verl.cli import main

    raw = td.write_jsonl(td.sentence_pairs(10), tmp_path / "pairs.jsonl")
    args = [a for a in td.prepare_args(raw, tmp_path / "rows.parquet", 0.2)]
    at = args.index("--language-check-min-letters")
    args = args[:at] + args[at + 2:] + (["--language-check-min-letters", value] if value else [])
    assert main(args) == 0
    params = read_rows(tmp_path / "rows.parquet")[0]["extra_info"]["dupo"]["params"]
    assert params["language_check_min_letters"] == stored
    assert get_task("translation", **params).language_check_min_letters == stored


@pytest.mark.parametrize(("value", "stored"), [(None, 20), ("0", 0), ("45", 45)])
def test_prepare_translation_source_check_min_letters_reaches_the_rows(tmp_path, value, stored, capsys):
    from dupo_verl.cli import main

    raw = td.write_jsonl(td.sentence_pairs(10), tmp_path / "pairs.jsonl")
    args = td.prepare_args(raw, tmp_path / "rows.parquet", 0.2) + (["--source-check-min-letters", value] if value else [])
    assert main(args) == 0
    params = read_rows(tmp_path / "rows.parquet")[0]["extra_info"]["dupo"]["params"]
    assert params["source_check_min_letters"] == stored
    assert get_task("translation", **params).source_check_min_letters == stored
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # checked by argparse, at the door
        main([*args, "--output", str(tmp_path / "bad.parquet"), "--source-check-min-letters", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and "argument --source-check-min-letters: must be an integer in [0," in err[-1]
    assert not (tmp_path / "bad.parquet").exists()


def test_the_demo_checks_the_language_of_every_answer_and_names_a_bad_minimum(tmp_path, capsys):
    from dupo_verl.cli import main

    raw = td.write_jsonl(td.sentence_pairs(5), tmp_path / "pairs.jsonl")
    args = td.prepare_args(raw, tmp_path / "rows.parquet", 0.2)
    assert args[args.index("--language-check-min-letters") + 1] == "0"  # the grammar's detector is exact
    with pytest.raises(SystemExit) as stop:  # checked by argparse, at the door
        main([*args, "--language-check-min-letters", "-3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and "argument --language-check-min-letters: must be an integer in [0," in err[-1]
    assert not (tmp_path / "rows.parquet").exists()
