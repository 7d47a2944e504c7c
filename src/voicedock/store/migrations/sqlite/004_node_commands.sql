-- Control commands for a call another node serves (calls/node_commands.py). SQLite serves one
-- node, so this table stays empty; it exists so that both databases have the same schema.
CREATE TABLE node_commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    reply TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX node_commands_pending ON node_commands (recipient) WHERE state = 'pending';
