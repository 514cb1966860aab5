"""COMET in translation validation (`reward_fns.comet`, `compute_score(..., comet_model=...)`).

Without `unbabel-comet` (the unit venv: it pins numpy < 2 and transformers < 5), asking for COMET is
one clear error. With it, the real COMET code path runs on a tiny randomly initialised COMET
regression model built here (the hub models cannot be downloaded on this machine): its scores mean
nothing, but they come from comet's own `load_from_checkpoint` and `predict`, through our interface.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from reward_fns import compute_score
from reward_fns.comet import comet_available, comet_scores, translation_comet

ROW = {"dupo": {"task": "translation", "tgt_lang": "deu_Latn", "duals": [{"value": "The cat sat on the mat."}]}}


def test_without_the_package_comet_is_one_clear_error() -> None:
    if comet_available():
        pytest.skip("unbabel-comet is installed here; the tiny-model tests below cover it")
    plain = compute_score("flores", "Die Katze saß auf der Matte.", "Die Katze saß auf der Matte.", ROW)
    assert set(plain) == {"score", "bleu", "chrf", "gold_missing"}
    with pytest.raises(ValueError, match="comet_model='Unbabel/wmt22-comet-da' needs the unbabel-comet package"):
        compute_score("flores", "Die Katze.", "Die Katze.", ROW, comet_model="Unbabel/wmt22-comet-da")


def test_comet_needs_the_source_sentence() -> None:
    with pytest.raises(ValueError, match="COMET needs the source sentence"):
        translation_comet("any", "Die Katze.", "Die Katze.", {"dupo": {"task": "translation"}})
    with pytest.raises(ValueError, match="as many sources, hypotheses and references, got 1, 2, 1"):
        comet_scores("any", ["a"], ["b", "c"], ["d"])
    assert comet_scores("any", [], [], []) == []


def _tiny_comet_checkpoint(root: Path) -> Path:
    """A COMET regression metric on a 2-layer, 16-wide XLM-R with a character tokenizer, saved the
    way comet saves its models (hparams.yaml beside checkpoints/model.ckpt)."""
    import pytorch_lightning as pl
    import torch
    import yaml
    from comet.models import RegressionMetric
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import XLMRobertaConfig, XLMRobertaTokenizerFast

    encoder = root / "tiny-xlmr"
    chars = sorted(set("abcdefghijklmnopqrstuvwxyzäöüßABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-"))
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", *chars, "<mask>"])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    XLMRobertaTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
    ).save_pretrained(encoder)  # fmt: skip
    XLMRobertaConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=258, pad_token_id=1,
    ).save_pretrained(encoder)  # fmt: skip
    torch.manual_seed(0)
    model = RegressionMetric(pretrained_model=str(encoder), load_pretrained_weights=False, hidden_sizes=[8])
    folder = root / "tiny-comet"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "hparams.yaml").write_text(yaml.safe_dump(dict(model.hparams)))
    checkpoint = folder / "checkpoints" / "model.ckpt"
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(checkpoint)
    return checkpoint


@pytest.fixture(scope="module")
def tiny_comet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not comet_available():
        pytest.skip("unbabel-comet is not installed (pip install unbabel-comet to run the COMET path)")
    return _tiny_comet_checkpoint(tmp_path_factory.mktemp("comet"))


def test_compute_score_adds_comet_through_comets_own_predict(tiny_comet: Path) -> None:
    import comet

    hyp, ref = "Die Katze sass auf der Matte.", "Die Katze sass auf der Matte."
    out = compute_score("flores", hyp, ref, ROW, comet_model=str(tiny_comet))
    assert set(out) == {"score", "bleu", "chrf", "comet", "gold_missing"} and math.isfinite(out["comet"])
    assert out["score"] == out["chrf"] == pytest.approx(1.0)
    direct = comet.load_from_checkpoint(str(tiny_comet)).predict(
        [{"src": "The cat sat on the mat.", "mt": hyp, "ref": ref}], batch_size=1, gpus=0, progress_bar=False
    )
    assert out["comet"] == pytest.approx(direct.scores[0], abs=1e-5)
    # a row with the source in extra_info["source"], and a batch: one score per sentence, in order
    other = compute_score("flores", "Ein Hund.", ref, {"source": "A dog.", "tgt_lang": "deu_Latn"}, comet_model=str(tiny_comet))
    batch = comet_scores(str(tiny_comet), ["The cat sat on the mat.", "A dog."], [hyp, "Ein Hund."], [ref, ref])
    assert batch == pytest.approx([out["comet"], other["comet"]], abs=1e-5)


def test_a_model_that_cannot_be_loaded_is_one_clear_error(tmp_path: Path) -> None:
    if not comet_available():
        pytest.skip("unbabel-comet is not installed")
    bad = tmp_path / "model.ckpt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="could not be loaded"):
        compute_score("flores", "Die Katze.", "Die Katze.", ROW, comet_model=str(bad))
