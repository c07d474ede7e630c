-- One durable inbox for every input, claims with leases, and per-order link creation
-- decided in the database (bot/ports.py says what each must guarantee).

-- Every input, stored under its sender's id before it is acknowledged. A lane (a
-- chat, an order) is handled one entry at a time, lowest seq first; `seq` is an
-- explicit rowid so that VACUUM keeps the stored order.
CREATE TABLE inbox (
    seq             INTEGER PRIMARY KEY,
    source          TEXT NOT NULL CHECK (source <> ''),
    source_id       TEXT NOT NULL CHECK (source_id <> ''),
    kind            TEXT NOT NULL CHECK (kind <> ''),
    lane            TEXT NOT NULL CHECK (lane <> ''),
    body            TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    claimed_by      TEXT,
    claimed_until   TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    finished_at     TEXT,
    set_aside_at    TEXT,
    last_error      TEXT,
    UNIQUE (source, source_id)
);

CREATE INDEX inbox_open_by_lane ON inbox (lane, seq)
    WHERE finished_at IS NULL AND set_aside_at IS NULL;
CREATE INDEX inbox_finished ON inbox (finished_at) WHERE finished_at IS NOT NULL;

-- What the three intakes of version 4 had stored and not yet handled moves here.
INSERT INTO inbox (source, source_id, kind, lane, body, received_at, next_attempt_at)
    SELECT 'cimplify', id, 'cimplify.event', 'order:' || order_id, CAST(body AS TEXT),
           received_at, received_at
    FROM webhook_events WHERE applied_at IS NULL ORDER BY seq;

INSERT INTO inbox (source, source_id, kind, lane, body, received_at, next_attempt_at)
    SELECT 'twilio', message_id, 'whatsapp.message', 'whatsapp:' || chat_id,
           json_object('from', chat_id, 'text', text), received_at, received_at
    FROM inbound_messages WHERE handled_at IS NULL ORDER BY seq;

INSERT INTO inbox (source, source_id, kind, lane, body, received_at, next_attempt_at)
    SELECT 'telegram', CAST(update_id AS TEXT), 'telegram.update',
           COALESCE('telegram:' || COALESCE(json_extract(body, '$.message.chat.id'),
                                            json_extract(body, '$.edited_message.chat.id'),
                                            json_extract(body, '$.callback_query.message.chat.id')),
                    'update:' || update_id),
           body, received_at, received_at
    FROM telegram_updates WHERE handled_at IS NULL ORDER BY update_id;

DROP TABLE webhook_events;
DROP TABLE inbound_messages;
DROP TABLE telegram_updates;

-- The outbox: a claimed head is in flight (one message a chat at most); a paused
-- chat (its pace, a Retry-After) takes nothing before `paused_until`. Under SQLite's
-- one writer ids are given in commit order, so the lowest id is each chat's head.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;

CREATE TABLE outbox_pauses (
    channel      TEXT NOT NULL,
    chat_id      TEXT NOT NULL,
    paused_until TEXT NOT NULL,
    PRIMARY KEY (channel, chat_id)
) WITHOUT ROWID;

-- Who is creating a link for an order right now, so that two /invoice for one
-- order make one link whichever processes take them.
CREATE TABLE order_claims (
    order_id TEXT PRIMARY KEY NOT NULL,
    holder   TEXT NOT NULL,
    until    TEXT NOT NULL
) WITHOUT ROWID;
