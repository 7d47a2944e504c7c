-- Caller numbers' health (docs/api.md, Phone numbers' health): the outcomes of the outbound
-- calls made from each lately, as of its last call's end ({"window_hours", "as_of",
-- "outcomes": {"calls", "answered", "short_calls", "voicemails"}, "healthy"}; NULL: none yet),
-- when it was flagged (its answer rate under the operator's floor), until when it rests, and
-- from when its calls count (the end of a rest or a reset; NULL: the window alone).
ALTER TABLE phone_numbers ADD COLUMN health JSONB;
ALTER TABLE phone_numbers ADD COLUMN flagged_at TIMESTAMPTZ;
ALTER TABLE phone_numbers ADD COLUMN resting_until TIMESTAMPTZ;
ALTER TABLE phone_numbers ADD COLUMN health_since TIMESTAMPTZ;
