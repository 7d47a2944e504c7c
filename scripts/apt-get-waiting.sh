#!/usr/bin/env bash
# apt-get with the given arguments, waiting while another apt or dpkg holds the package system's
# lock (a fresh machine's unattended-upgrades does for its first minutes) instead of failing at
# once: it says once what it waits for, and gives up after VOICEDOCK_APT_LOCK_WAIT seconds
# (default 600) with apt-get's own error and exit code.
#   scripts/apt-get-waiting.sh update -qq
#   scripts/apt-get-waiting.sh install -y sox
# apt-get's -o DPkg::Lock::Timeout waits for dpkg's locks (install, remove) but not for the
# package lists' lock that `apt-get update` takes (apt 2.6, Debian 12, fails at once there), so a
# run that fails on a lock is also tried again every 2 s until the time is up.
set -uo pipefail

wait_s="${VOICEDOCK_APT_LOCK_WAIT:-600}"
if ! [[ "$wait_s" =~ ^[0-9]+$ ]]; then
    echo "apt-get-waiting: VOICEDOCK_APT_LOCK_WAIT must be a number of seconds, not '$wait_s'" >&2
    exit 2
fi
deadline=$((SECONDS + wait_s))
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT

lock_wait=0 # the first try fails at once on a held lock, so the message comes before the wait
said=""
while true; do
    apt-get -o "DPkg::Lock::Timeout=$lock_wait" "$@" 2>"$errors"
    code=$?
    if [ "$code" -eq 0 ]; then
        cat "$errors" >&2 # apt-get's warnings
        exit 0
    fi
    held="$(grep -m 1 -o 'Could not get lock .*' "$errors")"
    if [ -z "$held" ] || [ "$SECONDS" -ge "$deadline" ]; then
        cat "$errors" >&2
        [ -z "$held" ] || echo "apt-get-waiting: the lock was still held after ${wait_s} s;" \
            "run this again once the other apt or dpkg is done" >&2
        exit "$code"
    fi
    if [ -z "$said" ]; then
        echo "apt-get-waiting: another apt or dpkg is running (${held}); waiting up to" \
            "${wait_s} s for it to finish" >&2
        said=1
    fi
    left=$((deadline - SECONDS))
    sleep "$((left < 2 ? left : 2))"
    left=$((deadline - SECONDS))
    lock_wait=$((left > 0 ? left : 0))
done
