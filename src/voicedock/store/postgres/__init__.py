"""The PostgreSQL backend: the store, asyncpg's errors as the store's, the nodes' mailbox."""
