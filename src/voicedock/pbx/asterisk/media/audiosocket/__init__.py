"""Call audio over AudioSocket (TCP): ARI ``externalMedia`` with ``encapsulation=audiosocket``,
where the Asterisk server has ``chan_audiosocket``; Asterisk connects to voicedock."""
