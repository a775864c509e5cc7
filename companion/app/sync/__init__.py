"""The sync exchange: the protocol's pure steps (protocol.py) and the two stores that run them against the
database, each in one transaction (dbapi_store.py: SQLite, or PostgreSQL through psycopg; asyncpg_store.py:
PostgreSQL through an asyncpg pool of its own, for throughput)."""
