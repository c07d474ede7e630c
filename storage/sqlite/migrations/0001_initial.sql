-- paybot's first schema. Times are ISO 8601 UTC text of one fixed width
-- (YYYY-MM-DDTHH:MM:SS.ffffff+00:00) so that text order is time order.
-- Money is Decimal text, never REAL.

CREATE TABLE links (
    id                TEXT PRIMARY KEY NOT NULL,
    order_id          TEXT NOT NULL CHECK (length(order_id) BETWEEN 1 AND 64),
    token             TEXT NOT NULL UNIQUE CHECK (token <> ''),
    url               TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    business_name     TEXT NOT NULL,
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    total             TEXT NOT NULL,
    line_items        TEXT NOT NULL CHECK (json_valid(line_items)),
    status            TEXT NOT NULL CHECK (status IN (
                          'pending', 'processing', 'awaiting_authorization',
                          'paid', 'failed', 'expired')),
    created_at        TEXT NOT NULL,
    status_changed_at TEXT NOT NULL,
    confirmed_at      TEXT,
    reference         TEXT,
    next_poll_at      TEXT,
    -- A confirmed link is a paid link: nothing may move it elsewhere.
    CHECK (confirmed_at IS NULL OR status = 'paid')
);

CREATE INDEX links_by_order ON links (order_id, created_at);
CREATE INDEX links_due ON links (next_poll_at) WHERE next_poll_at IS NOT NULL;

CREATE TABLE subscriptions (
    link_id    TEXT NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    channel    TEXT NOT NULL CHECK (channel <> ''),
    chat_id    TEXT NOT NULL CHECK (chat_id <> ''),
    role       TEXT NOT NULL CHECK (role IN ('merchant', 'customer')),
    message_id TEXT,
    PRIMARY KEY (link_id, channel, chat_id)
);

CREATE INDEX subscriptions_by_chat ON subscriptions (channel, chat_id);

CREATE TABLE status_history (
    id        INTEGER PRIMARY KEY,
    link_id   TEXT NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    -- NULL stands for the confirmation (a verified webhook), not a status.
    status    TEXT CHECK (status IS NULL OR status IN (
                  'pending', 'processing', 'awaiting_authorization',
                  'paid', 'failed', 'expired')),
    at        TEXT NOT NULL,
    reference TEXT
);

CREATE INDEX status_history_by_link ON status_history (link_id, id);

-- `seq` is an explicit rowid: VACUUM may renumber an implicit one, and the
-- received order of events must survive it.
CREATE TABLE webhook_events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE CHECK (id <> ''),
    type        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    token       TEXT,
    amount      TEXT,
    currency    TEXT,
    reference   TEXT,
    body        BLOB NOT NULL,
    received_at TEXT NOT NULL,
    applied_at  TEXT,
    CHECK ((amount IS NULL) = (currency IS NULL))
);

CREATE INDEX webhook_events_unapplied ON webhook_events (seq) WHERE applied_at IS NULL;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel         TEXT NOT NULL CHECK (channel <> ''),
    chat_id         TEXT NOT NULL CHECK (chat_id <> ''),
    kind            TEXT NOT NULL CHECK (kind IN ('text', 'invoice', 'caption')),
    text            TEXT NOT NULL,
    link_id         TEXT REFERENCES links (id),
    buttons         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(buttons)),
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT NOT NULL,
    sent_at         TEXT,
    dropped_at      TEXT,
    last_error      TEXT,
    CHECK (kind = 'text' OR link_id IS NOT NULL),
    CHECK (sent_at IS NULL OR dropped_at IS NULL)
);

-- Each chat's queue of unsent messages: the head is the lowest id per chat.
CREATE INDEX outbox_unsent ON outbox (channel, chat_id, id)
    WHERE sent_at IS NULL AND dropped_at IS NULL;

-- The head of each chat's queue: its first unsent message. Nothing later in a
-- chat may go before it, so only heads are ever due.
CREATE VIEW outbox_heads AS
    SELECT outbox.* FROM outbox
    JOIN (SELECT MIN(id) AS id FROM outbox
          WHERE sent_at IS NULL AND dropped_at IS NULL
          GROUP BY channel, chat_id) AS head ON outbox.id = head.id;
