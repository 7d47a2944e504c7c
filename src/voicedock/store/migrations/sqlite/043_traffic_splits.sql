-- Splits set on a campaign or a number rather than on the assistant.
-- A campaign's calls split between versions of its assistant by the contact's number
-- (docs/assistant-versions.md): [{"version", "weight", "agent_name", "business_name",
-- "assistant_config"}, ...], each version resolved when the campaign was created (NULL: every
-- call runs the campaign's one snapshot).
ALTER TABLE campaigns ADD COLUMN split TEXT;
-- A number's inbound calls split between versions of its assistant by the caller's number
-- ([{"version", "weight"}, ...]; NULL: its assistant's own split, if any).
ALTER TABLE phone_numbers ADD COLUMN traffic_split TEXT;
