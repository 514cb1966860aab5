"""COMET for translation validation: opt-in, for a machine that has `unbabel-comet` and its model.

chrF and BLEU (``reward_fns.text``) are always computed; COMET is what the DuPO paper reports, but
it needs ``pip install unbabel-comet 'setuptools<81'`` (its torchmetrics 0.10 imports
``pkg_resources``; it also pins transformers < 5 and numpy < 2, so it lives in its own environment,
not the unit venv) and a model: a hub name such as ``Unbabel/wmt22-comet-da`` (downloaded into the Hugging Face cache the
first time, so it needs the network once) or a local ``.ckpt`` path. `compute_score` uses it when
given the reward kwarg ``comet_model``:

    +reward.custom_reward_function.reward_kwargs.comet_model=Unbabel/wmt22-comet-da

Each model is loaded once per process and kept.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["comet_available", "comet_scores", "load_comet"]

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


def comet_available() -> bool:
    """Whether the `unbabel-comet` package can be imported here."""
    try:
        import comet  # noqa: F401
    except ImportError:
        return False
    return True


def load_comet(model: str) -> Any:
    """The COMET model `model` (a local checkpoint file or a hub name), loaded once per process.

    Raises ValueError naming the fix when the package is missing or the model cannot be loaded.
    """
    with _LOCK:
        if model in _MODELS:
            return _MODELS[model]
        try:
            import comet
        except ImportError as exc:
            raise ValueError(
                f"comet_model={model!r} needs the unbabel-comet package (pip install unbabel-comet): {exc}"
            ) from exc
        try:
            path = model if Path(model).is_file() else comet.download_model(model)
            loaded = comet.load_from_checkpoint(path)
        except Exception as exc:  # hub unreachable, not a COMET checkpoint, ...
            raise ValueError(
                f"comet_model={model!r} could not be loaded ({type(exc).__name__}: {exc}); give a local "
                "checkpoint path (.../checkpoints/model.ckpt) or a hub name on a machine with network"
            ) from exc
        _MODELS[model] = loaded
        return loaded


def comet_scores(
    model: str,
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    batch_size: int = 16,
    gpus: int | None = None,
) -> list[float]:
    """One COMET score per (source, hypothesis, reference); `gpus` None: 1 when CUDA is available."""
    if not len(sources) == len(hypotheses) == len(references):
        raise ValueError(
            f"comet_scores needs as many sources, hypotheses and references, got "
            f"{len(sources)}, {len(hypotheses)}, {len(references)}"
        )
    if not sources:
        return []
    scorer = load_comet(model)
    if gpus is None:
        import torch

        gpus = 1 if torch.cuda.is_available() else 0
    samples = [
        {"src": str(s), "mt": str(h), "ref": str(r)} for s, h, r in zip(sources, hypotheses, references, strict=True)
    ]
    with _LOCK:  # one Lightning predict at a time per process
        output = scorer.predict(samples, batch_size=batch_size, gpus=gpus, progress_bar=False)
    return [float(x) for x in output.scores]


def translation_comet(model: str, hypothesis: str, reference: str, extra_info: Any) -> float:
    """COMET of one translation row: the source is ``extra_info["source"]`` or, in rows written by
    ``dupo-verl prepare translation``, the hidden value of its dual question."""
    info = extra_info if isinstance(extra_info, Mapping) else {}
    source = info.get("source")
    dupo = info.get("dupo")
    duals = dupo.get("duals") if isinstance(dupo, Mapping) else None
    if not source and duals is not None and len(duals) and isinstance(duals[0], Mapping):
        source = duals[0].get("value")  # a list, or a numpy array when read back from parquet
    if not source:
        raise ValueError(
            "COMET needs the source sentence: extra_info['source'] or extra_info['dupo']['duals'][0]['value']"
        )
    return comet_scores(str(model), [str(source)], [hypothesis], [reference])[0]
