"""Answer checking, similarity and reward shaping; knows nothing of verl or DuPO.

Submodules: ``reward_fns.math`` (extract and compare answers; a comparison is equal, unequal or
timed out, see ``Verdict``), ``reward_fns.numbers`` / ``reward_fns.units`` / ``reward_fns.latex``
(how number forms, units and TeX arguments are read), ``reward_fns.verify_pool`` (time-bounded
math-verify helpers), ``reward_fns.text`` (BLEU, chrF,
ROUGE-L, token F1, exact match), ``reward_fns.structured`` (JSON similarity),
``reward_fns.shaping`` (exp(-lambda * d), weighted mixing) and ``compute_score`` for verl's
custom reward function hook.
"""

from reward_fns.scoring import compute_score

__all__ = ["compute_score"]
