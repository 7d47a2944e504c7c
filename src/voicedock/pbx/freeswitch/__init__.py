"""FreeSWITCH: the Event Socket client, media over mod_audio_stream, transfers, doctor."""
