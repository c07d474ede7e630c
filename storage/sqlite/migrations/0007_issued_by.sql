-- Merchants' roles (bot/access.py): who issued each link, "<channel>:<sender id>".
-- NULL for links issued before roles existed: those belong to owners only.
ALTER TABLE links ADD COLUMN issued_by TEXT CHECK (issued_by IS NULL OR issued_by <> '');

CREATE INDEX links_by_issuer ON links (issued_by, created_at) WHERE issued_by IS NOT NULL;

-- /cancel: a link's status may be 'cancelled'. SQLite cannot alter a CHECK, and
-- rebuilding `links` would cascade deletes through its children (foreign keys are on
-- during migrations). Widening an IN list only loosens the constraint, so every row
-- stored still satisfies it: the case SQLite's documentation (ALTER TABLE, "Making
-- other kinds of table schema changes") allows editing the stored schema text for.
-- RESET reloads this connection's schema; the schema cookie, bumped by the DDL above,
-- makes every other connection reload it.
PRAGMA writable_schema = ON;

UPDATE sqlite_schema
SET sql = replace(sql, '''paid'', ''failed'', ''expired'')',
                       '''paid'', ''failed'', ''expired'', ''cancelled'')')
WHERE type = 'table' AND name IN ('links', 'status_history');

PRAGMA writable_schema = RESET;
