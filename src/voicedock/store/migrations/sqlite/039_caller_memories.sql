-- Callers remembered (docs/caller-memory.md): what a call of an assistant with "memory" left of
-- the other party (its summary, the facts its analysis extracted), under the party's number;
-- the latest given to the model at the start of the party's next calls. Deleted with the call
-- (its retention) or through DELETE /callers/{number}/memory.
CREATE TABLE caller_memories (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    party TEXT NOT NULL,
    call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    assistant_id TEXT,
    summary TEXT NOT NULL,
    facts TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX caller_memories_party ON caller_memories (organization_id, party, created_at);
CREATE INDEX caller_memories_call ON caller_memories (call_id);
