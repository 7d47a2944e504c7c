#!/usr/bin/env bash
# The test command: lint, type-check, check the layer contracts (pyproject [tool.importlinter]),
# then the whole suite (unit, real Asterisk, PostgreSQL, e2e).
# With CI=true the real-Asterisk and PostgreSQL tests must run: their fixtures fail instead of skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check src lab tests bench
.venv/bin/ruff format --check src lab tests bench
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
# Several workers (pytest-xdist), each with its own lab Asterisk, lab FreeSWITCH and PostgreSQL
# on free ports; a module stays on one worker. Most lab time is waiting for audio in real time,
# so three workers pay even on 2 cores; four put audio deadlines at risk (docs/testing.md).
# VOICEDOCK_TEST_WORKERS=0 runs everything in this process.
workers="${VOICEDOCK_TEST_WORKERS:-3}"
exec .venv/bin/pytest -n "$workers" --dist loadscope --no-loadscope-reorder --durations=30 "$@"
