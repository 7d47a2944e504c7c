-- Webhook deliveries are claimed fairly (store/sql/outbox.py): each endpoint's pending rows in
-- due order, and the rows leased right now (the deliveries in flight on every node, counted
-- against the caps per endpoint and per organization).
CREATE INDEX webhook_outbox_endpoint_due ON webhook_outbox (endpoint_id, next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX webhook_outbox_leased ON webhook_outbox (lease_until)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL AND lease_until IS NOT NULL;
