#!/usr/bin/env bash
# The main job on one machine: install, bring up the lab Asterisk PBX on 127.0.0.1, create an
# API key, print a ready-to-paste curl that calls a lab destination, and serve the API.
# Against your own PBX, run `voicedock serve --config your.toml` instead (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

export VOICEDOCK_CONFIG="${VOICEDOCK_CONFIG:-voicedock.example.toml}"
# The lab's loopback-only credentials (see src/voicedock/lab/settings.py).
export VOICEDOCK_PBX__ASTERISK__ARI_PASSWORD="${VOICEDOCK_PBX__ASTERISK__ARI_PASSWORD:-vd-ari-secret}"
export VOICEDOCK_PBX__ASTERISK__AMI_SECRET="${VOICEDOCK_PBX__ASTERISK__AMI_SECRET:-vd-ami-secret}"
# The lab may send webhooks to receivers on this machine (production refuses loopback).
export VOICEDOCK_WEBHOOKS__ALLOW_LOOPBACK="${VOICEDOCK_WEBHOOKS__ALLOW_LOOPBACK:-true}"

port="${VOICEDOCK_SERVER__PORT:-8080}"
# The lab dials back to voicedock's own port for media in client mode (media_connection = "client").
.venv/bin/voicedock lab up --media-ws-port "$port"
.venv/bin/voicedock migrate
key="$(.venv/bin/voicedock keys create --organization acme | tail -n 1)"
assistant_id="$(.venv/bin/python -c 'from voicedock.calls.config_mirror import stable_id as s; print(s("assistant", s("organization", "acme"), "Customer Support"))')"
cat <<TXT

voicedock is starting on http://127.0.0.1:${port} (lab PBX on 127.0.0.1; stop it with
'.venv/bin/voicedock lab down'). Your API key for organization "acme":

  ${key}

Place a call to the lab's demo party (+31612345676: it listens to the greeting, then asks for
an appointment) with the configured assistant:

  curl -s -X POST http://127.0.0.1:${port}/calls/outbound \\
    -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\
    -d '{"destination": "+31612345676", "assistant_id": "${assistant_id}"}'

then follow it with: curl -s -H "Authorization: Bearer ${key}" http://127.0.0.1:${port}/calls
or live: curl -N -H "Authorization: Bearer ${key}" http://127.0.0.1:${port}/calls/<call_id>/events

TXT
exec .venv/bin/voicedock serve
