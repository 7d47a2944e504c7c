-- A webhook claim names the node that made it (store/sql/outbox.py): a lease held by a node
-- whose own node lease ran out is no delivery in flight, and its row is claimed again at once.
ALTER TABLE webhook_outbox ADD COLUMN claimed_by TEXT;
