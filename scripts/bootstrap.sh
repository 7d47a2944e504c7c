#!/usr/bin/env bash
# Installs everything voicedock and its tests need on a fresh Debian machine, idempotently:
# system packages (PostgreSQL for the multi-node store tests, debootstrap for the lab PBX,
# espeak-ng/sox for audio fixtures, chromium and its driver for the console browser tests,
# jemalloc for the API fuzzing's schemathesis process: tests/api/schemathesis_process.py,
# prometheus for promtool and the dashboards' lab test: tests/observability/) and
# a virtualenv in .venv with the project and its extras, and the lab (lab/, the voicedock-lab
# distribution that adds `voicedock lab`), both editable.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
ls /usr/lib/*/libjemalloc.so.2 >/dev/null 2>&1 || need+=(libjemalloc2)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ "${#need[@]}" -gt 0 ]; then
    echo "bootstrap: installing system packages: ${need[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    # Waits (up to VOICEDOCK_APT_LOCK_WAIT s, default 600) while another apt holds the lock.
    apt=(env DEBIAN_FRONTEND=noninteractive "VOICEDOCK_APT_LOCK_WAIT=${VOICEDOCK_APT_LOCK_WAIT:-600}"
        bash scripts/apt-get-waiting.sh)
    $SUDO "${apt[@]}" update -qq
    $SUDO "${apt[@]}" install -y -qq "${need[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    "$PY" -m venv .venv
fi
stamp=.venv/.voicedock-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ lab/pyproject.toml -nt "$stamp" ] \
    || [ scripts/install-offline-speech.sh -nt "$stamp" ] \
    || ! .venv/bin/python -c 'import importlib.metadata as m; m.distribution("voicedock-lab")' \
        >/dev/null 2>&1; then
    echo "bootstrap: installing voicedock, its lab and the offline speech engines into .venv"
    .venv/bin/pip install -q --upgrade pip >/dev/null
    # One command: the lab's requirement "voicedock" is this checkout, never a download.
    .venv/bin/pip install -q -e '.[test]' -e ./lab
    bash scripts/install-offline-speech.sh
    touch "$stamp"
fi
