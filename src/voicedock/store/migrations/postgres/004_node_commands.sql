-- Control commands for a call another node serves (calls/node_commands.py): the node that took
-- the API request stores the command here and notifies the owner node's channel; the owner takes
-- it (state 'taken'), carries it out and stores its API answer ('answered'), notifying the
-- sender, which reads the answer and deletes the row. Rows left behind are deleted after a while.
CREATE TABLE node_commands (
    id BIGSERIAL PRIMARY KEY,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    reply TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX node_commands_pending ON node_commands (recipient) WHERE state = 'pending';
