-- flow: where the assistant's flow is and was (docs/flows.md), {"node", "path", "fields"};
-- NULL: the call's assistant has no flow (or calls before this version).
ALTER TABLE calls ADD COLUMN flow JSONB;
-- The node of the assistant's flow the call was in as the message ended (NULL: no flow).
ALTER TABLE call_messages ADD COLUMN flow_node TEXT;
