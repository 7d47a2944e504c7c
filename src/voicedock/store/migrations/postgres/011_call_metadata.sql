-- The client's own JSON object given with POST /calls/outbound (NULL: none): returned with
-- the call and carried in every webhook about it.
ALTER TABLE calls ADD COLUMN metadata JSONB;
