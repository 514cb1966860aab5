"""Registers the tasks shipped with dupo-verl (imported lazily by the registry)."""

from dupo_verl.tasks import math, span, translation, two_sum, two_sum_inverse  # noqa: F401
