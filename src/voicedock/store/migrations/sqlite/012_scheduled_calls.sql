-- Scheduled outbound calls: stored with status 'scheduled', dialed from scheduled_at and never
-- after latest_at, ringing at most ring_timeout_seconds (NULL for calls dialed at once).
ALTER TABLE calls ADD COLUMN scheduled_at TEXT;
ALTER TABLE calls ADD COLUMN latest_at TEXT;
ALTER TABLE calls ADD COLUMN ring_timeout_seconds INTEGER;
-- The dialer's claim: the scheduled calls due first.
CREATE INDEX calls_scheduled_due ON calls (scheduled_at, seq) WHERE status = 'scheduled';
