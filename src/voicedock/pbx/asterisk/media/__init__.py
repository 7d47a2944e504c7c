"""Asterisk's media transport: chan_websocket sessions (the wire codec, voicedock's websocket
client, the frame writer and the one 20 ms clock), the client-mode acceptor, and the bridge and
externalMedia legs that carry a call's audio."""
