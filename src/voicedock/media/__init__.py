"""What every PBX's call media shares: the ``CallMedia`` surface the conversation sees, codecs,
pacing, playback and its confirmation, framing, the sink, recordings. Each PBX's own transport
lives with its adapter (``pbx/asterisk/media/``, ``pbx/freeswitch/media/``)."""
