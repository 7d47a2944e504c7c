"""FreeSWITCH call audio over mod_audio_stream: wire codec, server, call media, playout clock."""
