"""The store on PostgreSQL (`PAYBOT_DATABASE=postgresql://…`), for one or many processes.

`PostgresStore` implements `bot.ports.Store`; its schema is the numbered SQL files
in `migrations/`, applied by `migrate`.
"""

from storage.postgres.store import PostgresStore, PostgresTx

__all__ = ["PostgresStore", "PostgresTx"]
