-- Live listen is a grant of its own (GET /calls/{id}/listen): the keys that could change
-- things keep it, read-only keys (dashboards, wallboards) listen only where the operator
-- grants it (voicedock keys allow-listen).
ALTER TABLE api_keys ADD COLUMN listen INTEGER NOT NULL DEFAULT 0;
UPDATE api_keys SET listen = 1 WHERE scope <> 'read_only';
