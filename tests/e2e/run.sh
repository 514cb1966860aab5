#!/usr/bin/env bash
# End-to-end tier: build (or reuse) .venv-e2e, then run real `python -m verl.trainer.main_ppo` jobs
# on CPU. Extra arguments go to pytest (e.g. `-k baseline`). Env: DUPO_E2E_TIMEOUT_S (hard limit
# per main_ppo run, default 900), DUPO_E2E_KEEP=1 (keep the temp folder with logs).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${DUPO_E2E_VENV:-$ROOT/.venv-e2e}"

bash "$HERE/setup_venv.sh"
cd "$ROOT"
# The root pyproject ignores tests/e2e for plain `pytest` (addopts), and tests/conftest.py belongs
# to the unit tier's venv: clear addopts and stop conftest discovery at tests/e2e.
exec "$VENV/bin/python" -m pytest -o addopts="-ra" -o asyncio_default_fixture_loop_scope=function \
  --confcutdir "$HERE" -p no:cacheprovider --durations=15 "$HERE" -x -v "$@"
