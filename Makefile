# Two entry points a newcomer needs: `make demo` (the main job on this machine) and `make test`.
# Each creates its own virtual environment from this repository's files only.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on these machines' disk; a GPU machine brings its own torch.
TORCH_SPEC ?= torch==2.13.0

.PHONY: venv test lint demo e2e bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

lint: venv
	$(BIN)/ruff check .

test: venv lint
	$(BIN)/python -m pytest

# The main job on a CPU machine: the two-sum DuPO demo, trained by verl's real main_ppo. It needs
# the vLLM-CPU environment of the e2e tier (.venv-e2e, built and pinned by tests/e2e/setup_venv.sh).
# Default: the warm start, then 24 GRPO steps of dupo_frozen_ensemble (two dual questions asked of a
# frozen copy of the warm start; both must be rebuilt), judged on 600 held-out pairs.
# Add the gold-label control (one more main_ppo, about 12 minutes on 2 cores):
#   make demo DEMO_ARGS="--methods warm_start,dupo_frozen_ensemble,oracle"
DEMO_ARGS ?=
demo:
	bash tests/e2e/setup_venv.sh
	.venv-e2e/bin/dupo-verl demo two-sum --output runs/two_sum --resume $(DEMO_ARGS)

e2e: venv
	bash tests/e2e/run.sh

bench: venv
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .venv-e2e .pytest_cache .ruff_cache
