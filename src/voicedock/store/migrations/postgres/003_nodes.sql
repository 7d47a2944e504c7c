-- Several voicedock nodes on one database: each call names the node that owns it, and each
-- running node holds a lease row it renews; a node whose lease expired is dead and a surviving
-- node takes its calls over (calls/nodes.py). Calls from before this migration have no owner:
-- the next node to start takes them as its own previous run's.
ALTER TABLE calls ADD COLUMN owner_node TEXT;
CREATE INDEX calls_owner_active ON calls (owner_node) WHERE status IN ('connecting', 'in-progress');
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_space TEXT NOT NULL,
    run TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);
