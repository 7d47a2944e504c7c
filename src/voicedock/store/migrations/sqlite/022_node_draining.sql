-- A node that drains (SIGTERM, voicedock nodes drain: calls/nodes/drain.py) takes no new calls
-- and stops once its calls have ended; the other nodes leave it out of what they share (the
-- inbound calls, the outbound requests it hands on). Asked for here by the CLI, too.
ALTER TABLE nodes ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
