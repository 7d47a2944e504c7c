#!/usr/bin/env bash
# The test command: lint, type-check, check the layer contracts (pyproject [tool.importlinter]),
# then the whole suite (unit, real Asterisk, PostgreSQL, e2e).
# With CI=true the real-Asterisk and PostgreSQL tests must run: their fixtures fail instead of skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
exec .venv/bin/pytest --durations=30 "$@"
