-- The media leg after the answer, in ms from it (JSON): media_connected_ms (the call's media
-- connected: websocket up and bridged with the caller), first_audio_ms (the assistant's first
-- audio written to it). NULL: never answered, or no media.
ALTER TABLE calls ADD COLUMN timings TEXT;
