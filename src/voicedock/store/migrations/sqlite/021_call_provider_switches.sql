-- How many times a turn of the call moved on to the next entry of a fallback plan (its
-- provider-switch events), stored when the call ends. NULL: not recorded (calls before this
-- version, calls no conversation served).
ALTER TABLE calls ADD COLUMN provider_switches INTEGER;
