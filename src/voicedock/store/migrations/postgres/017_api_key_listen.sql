-- Live listen is a grant of its own (GET /calls/{id}/listen): the keys that could change
-- things keep it, read-only keys (dashboards, wallboards) listen only where the operator
-- grants it (voicedock keys allow-listen).
ALTER TABLE api_keys ADD COLUMN listen BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE api_keys SET listen = TRUE WHERE scope <> 'read_only';
