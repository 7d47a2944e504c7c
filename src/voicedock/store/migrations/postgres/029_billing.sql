-- Billing (docs/billing.md): the operator's rate cards, each change a new version never
-- edited (organization_id NULL: the default card), the terms as JSON with prices as decimal
-- strings.
CREATE TABLE rate_cards (
    id TEXT PRIMARY KEY,
    organization_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    terms JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX rate_cards_version ON rate_cards (coalesce(organization_id, ''), version);
-- An organization's monthly spending limit (a decimal string) and its warning threshold.
CREATE TABLE spend_limits (
    organization_id TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    monthly_spend TEXT NOT NULL,
    warning_percent INTEGER,
    updated_at TIMESTAMPTZ NOT NULL
);
-- The spending thresholds announced by webhook: once per organization, month and threshold.
CREATE TABLE spend_alerts (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    month TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, month, threshold)
);
-- A rated call's cost (JSON: amount as a decimal string, currency, billed seconds, the rate
-- card's id and version, the destination and rate); NULL: not rated.
ALTER TABLE calls ADD COLUMN cost JSONB;
