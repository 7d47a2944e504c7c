#!/bin/sh
# The demo carrier (compose profile demo): the Asterisk image with the demo carrier's SIP and
# dialplan (mounted at /demo) instead of voicedock's, then exec Asterisk.
set -eu
install -m 0644 /demo/pjsip.conf /demo/extensions.conf /etc/asterisk/
# As the lab's parties, the party sends audio while it is silent too (transmit_silence).
grep -q '^transmit_silence' /etc/asterisk/asterisk.conf \
    || sed -i '/^\[options\]/a transmit_silence = yes' /etc/asterisk/asterisk.conf
install -d -o asterisk -g asterisk /run/asterisk /var/spool/asterisk/monitor
exec "$@"
