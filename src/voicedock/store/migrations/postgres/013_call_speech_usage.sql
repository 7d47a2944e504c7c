-- What the call used of its speech providers (JSON array, stored when the call ends):
-- {"kind": "stt", "provider", "seconds"} and {"kind": "tts", "provider", "characters"}.
-- NULL: not recorded (calls before this version, calls never connected to media).
ALTER TABLE calls ADD COLUMN speech_usage JSONB;
