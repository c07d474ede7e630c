-- Telegram updates fetched by long polling, stored before the next getUpdates
-- (its higher offset) confirms them to Telegram: a crash between fetching and
-- handling cannot lose one. Telegram redelivers what was not confirmed; the
-- update id keeps a redelivered one from being stored, or handled, twice.
CREATE TABLE telegram_updates (
    update_id   INTEGER PRIMARY KEY,
    body        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    handled_at  TEXT
);

CREATE INDEX telegram_updates_unhandled ON telegram_updates (update_id)
    WHERE handled_at IS NULL;
