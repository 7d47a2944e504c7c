"""FreeSWITCH call audio over mod_audio_stream: wire codec, server, call media, playout clock,
and the hub that starts each call's stream over ESL and routes its events."""
