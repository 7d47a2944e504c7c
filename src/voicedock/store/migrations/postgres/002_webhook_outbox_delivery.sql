-- Webhook outbox, as the delivery worker uses it:
-- enqueuing one event twice for an endpoint is a no-op (unique endpoint + webhook-id), and a
-- delivery the worker gave up on is kept (for inspection) but never claimed again.
CREATE UNIQUE INDEX webhook_outbox_endpoint_msg ON webhook_outbox (endpoint_id, msg_id);
ALTER TABLE webhook_outbox ADD COLUMN gave_up_at TIMESTAMPTZ;
DROP INDEX webhook_outbox_due;
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
-- The payload is the exact body that is signed and sent on every attempt; JSONB would
-- re-encode it (key order, spacing), so it is kept as the JSON text it was enqueued as.
ALTER TABLE webhook_outbox ALTER COLUMN payload TYPE TEXT USING payload::text;
