#!/usr/bin/env bash
# The main job on one machine: install, bring up the lab PBX on 127.0.0.1, create an API key,
# print a ready-to-paste curl that calls a lab destination, and serve the API.
#   scripts/run.sh                    the lab Asterisk
#   scripts/run.sh --pbx freeswitch   the lab FreeSWITCH (built once from its sources, see README)
# (or VOICEDOCK_LAB_PBX=freeswitch). VOICEDOCK_LAB_INSTANCE names the FreeSWITCH lab instance
# and VOICEDOCK_LAB_FREE_PORTS=1 gives it free ports (several labs on one machine).
# Against your own PBX, run `voicedock serve --config your.toml` instead (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

pbx="${VOICEDOCK_LAB_PBX:-asterisk}"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --pbx) pbx="${2:-}"; shift 2 || shift ;;
        --pbx=*) pbx="${1#*=}"; shift ;;
        *) echo "usage: scripts/run.sh [--pbx asterisk|freeswitch]" >&2; exit 2 ;;
    esac
done
case "$pbx" in
    asterisk | freeswitch) ;;
    *) echo "scripts/run.sh: --pbx must be asterisk or freeswitch, not '$pbx'" >&2; exit 2 ;;
esac
bash scripts/bootstrap.sh

export VOICEDOCK_CONFIG="${VOICEDOCK_CONFIG:-voicedock.example.toml}"
# The lab's loopback-only credentials (see lab/src/voicedock_lab/settings.py).
export VOICEDOCK_PBX__ASTERISK__ARI_PASSWORD="${VOICEDOCK_PBX__ASTERISK__ARI_PASSWORD:-vd-ari-secret}"
export VOICEDOCK_PBX__ASTERISK__AMI_SECRET="${VOICEDOCK_PBX__ASTERISK__AMI_SECRET:-vd-ami-secret}"
# The lab may reach servers on this machine: webhook receivers, a local model (production
# refuses loopback; docs/speech.md).
export VOICEDOCK_EGRESS__ALLOW_LOOPBACK="${VOICEDOCK_EGRESS__ALLOW_LOOPBACK:-true}"

port="${VOICEDOCK_SERVER__PORT:-8080}"
if [ "$pbx" = freeswitch ]; then
    instance="${VOICEDOCK_LAB_INSTANCE:-default}"
    free_ports=()
    [ -z "${VOICEDOCK_LAB_FREE_PORTS:-}" ] || free_ports=(--free-ports)
    .venv/bin/voicedock lab up --pbx freeswitch --instance "$instance" "${free_ports[@]}"
    # voicedock talks to the lab over its Event Socket: port and random password from lab.json.
    read -r esl_port esl_password < <(.venv/bin/python - "$instance" <<'PY'
import sys
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import FreeswitchLabSettings
lab = LabFreeswitch(FreeswitchLabSettings(instance=sys.argv[1])).saved_or_self()
print(lab.esl_port, lab.esl_password)
PY
)
    export VOICEDOCK_PBX__KIND=freeswitch
    export VOICEDOCK_PBX__FREESWITCH__ESL_PORT="$esl_port"
    export VOICEDOCK_PBX__FREESWITCH__ESL_PASSWORD="$esl_password"
    .venv/bin/voicedock doctor  # the live FreeSWITCH: modules, gateway, inbound dialplan
    down=".venv/bin/voicedock lab down --pbx freeswitch --instance $instance"
else
    # The lab dials back to voicedock's own port for media in client mode (media_connection = "client").
    .venv/bin/voicedock lab up --media-ws-port "$port"
    down=".venv/bin/voicedock lab down"
fi
brain=""
if [ -z "${VOICEDOCK_SPEECH__LLM:-}" ] && [ "$VOICEDOCK_CONFIG" = voicedock.example.toml ]; then
    brain=" (its brain is the offline rule-based demo, not a language
model: README.md says how to plug one in)"
fi
party="+31612345676"
about="it listens to the greeting, then asks for an appointment"
.venv/bin/voicedock migrate
key="$(.venv/bin/voicedock keys create --organization acme | tail -n 1)"
assistant_id="$(.venv/bin/python -c 'from voicedock.organizations.config_mirror import stable_id as s; print(s("assistant", s("organization", "acme"), "Customer Support"))')"
cat <<TXT

voicedock is starting on http://127.0.0.1:${port} (lab ${pbx} on 127.0.0.1; stop it with
'${down}'). Your API key for organization "acme":

  ${key}

Place a call to the lab's demo party (${party}: ${about})
with the configured assistant${brain}; the answer holds the call's id, kept in \$call_id:

  answer=\$(curl -s -X POST http://127.0.0.1:${port}/calls/outbound \\
    -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\
    -d '{"destination": "${party}", "assistant_id": "${assistant_id}"}'); echo "\$answer"
  call_id=\$(echo "\$answer" | python3 -c 'import json, sys; print(json.load(sys.stdin)["call_id"])')

then follow that call: curl -s -H "Authorization: Bearer ${key}" http://127.0.0.1:${port}/calls/\$call_id
or live: curl -N -H "Authorization: Bearer ${key}" http://127.0.0.1:${port}/calls/\$call_id/events

TXT
exec .venv/bin/voicedock serve
