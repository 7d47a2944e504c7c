-- Rolling upgrades (docs/upgrades.md, store/migrate.py): each node's lease row records the
-- newest migration its code knows (NULL: a node of a version from before this migration, which
-- knows up to 022), and each applied contract step the migration since which no version's code
-- uses what it removed (NULL: an expand step). A contract step waits until every live node
-- knows that migration; a node whose code predates it refuses the database afterwards.
ALTER TABLE nodes ADD COLUMN schema_version INTEGER;
ALTER TABLE schema_migrations ADD COLUMN contract_after INTEGER;
