-- A caller number's calls in its health window (calls/outbound/number_health.py); built
-- without holding writes to calls (docs/upgrades.md).
CREATE INDEX CONCURRENTLY IF NOT EXISTS calls_number_created ON calls (number_id, created_at);
