-- ai_disclosure: how the call gave its required AI disclosure, {"required_by", "method",
-- "said", "at"} (docs/compliance.md). NULL: not required, or calls before this version.
ALTER TABLE calls ADD COLUMN ai_disclosure TEXT;
-- caller_attestation: an inbound caller's STIR/SHAKEN attestation as the carrier asserted it,
-- {"attest", "origid", "verstat"}. NULL: none sent, an outbound call, or calls before this.
ALTER TABLE calls ADD COLUMN caller_attestation TEXT;
-- The organization requires the AI disclosure on its calls where the operator does not.
ALTER TABLE organizations ADD COLUMN ai_disclosure_required INTEGER NOT NULL DEFAULT 0;
