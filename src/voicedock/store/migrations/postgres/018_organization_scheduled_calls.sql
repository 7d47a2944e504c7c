-- The operator's override of an organization's bound on calls waiting with scheduled_at
-- (NULL: the configuration's [limits] scheduled_calls_per_organization).
ALTER TABLE organizations ADD COLUMN max_scheduled_calls INTEGER;
