-- Webhook deliveries are claimed fairly (store/sql/outbox.py): the endpoints with pending rows
-- and each one's first rows in due order, and the rows leased right now (the deliveries in
-- flight on every node, counted against the caps per endpoint and per organization).
CREATE INDEX webhook_outbox_endpoint_due
    ON webhook_outbox (endpoint_id, next_attempt_at, created_at, id)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX webhook_outbox_leased ON webhook_outbox (lease_until)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL AND lease_until IS NOT NULL;
-- The event streams open on every node (store/sql/streams.py): the caps per API key and per
-- organization count them across nodes. A row lives by the lease of the node run serving it
-- and goes when that node leaves, starts again or is found dead.
CREATE TABLE event_streams (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    node_run TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    api_key_id TEXT NOT NULL,
    opened_at TEXT NOT NULL
);
CREATE INDEX event_streams_organization ON event_streams (organization_id);
CREATE INDEX event_streams_node ON event_streams (node_id, node_run);
