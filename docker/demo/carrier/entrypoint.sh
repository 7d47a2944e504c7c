#!/bin/sh
# The demo carrier (compose profile demo): the Asterisk image with the demo carrier's SIP and
# dialplan (mounted at /demo) instead of voicedock's, then exec Asterisk. Asterisk's own options
# otherwise: as many phones and carriers, the party sends no audio while it is silent.
set -eu
install -m 0644 /demo/pjsip.conf /demo/extensions.conf /etc/asterisk/
install -d -o asterisk -g asterisk /run/asterisk /var/spool/asterisk/monitor
exec "$@"
