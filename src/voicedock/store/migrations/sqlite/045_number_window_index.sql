-- A caller number's calls in its health window (calls/outbound/number_health.py).
CREATE INDEX IF NOT EXISTS calls_number_created ON calls (number_id, created_at);
