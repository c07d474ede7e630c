-- WhatsApp, delivery receipts and customer share links.

-- What a customer's deep link carries: unguessable, unlike the order id, and not
-- the payment token. Rows from version 1 get a random code of their own here.
ALTER TABLE links ADD COLUMN share_code TEXT CHECK (share_code IS NULL OR share_code <> '');

UPDATE links SET share_code = lower(hex(randomblob(12))) WHERE share_code IS NULL;

CREATE UNIQUE INDEX links_by_share_code ON links (share_code) WHERE share_code IS NOT NULL;

-- The channel's id for a sent message (Telegram's message_id, Twilio's MessageSid)
-- and what the channel last reported of it. Only a higher-ranked report replaces
-- a status, so repeated and reordered receipts cannot move it back.
ALTER TABLE outbox ADD COLUMN remote_id TEXT;

ALTER TABLE outbox ADD COLUMN delivery_status TEXT CHECK (
    delivery_status IS NULL OR delivery_status IN ('sent', 'delivered', 'read', 'failed'));

ALTER TABLE outbox ADD COLUMN delivery_status_at TEXT;

-- Telegram's message ids are unique per chat only, so this index is not UNIQUE.
CREATE INDEX outbox_by_remote_id ON outbox (channel, remote_id) WHERE remote_id IS NOT NULL;

-- A receipt can outrun the answer to the send it reports on (Twilio posts the
-- status callback while paybot is still reading the MessageSid). Such a receipt
-- waits here, keyed by the channel's id, until the send is recorded.
CREATE TABLE early_receipts (
    channel   TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
    at        TEXT NOT NULL,
    PRIMARY KEY (channel, remote_id)
) WITHOUT ROWID;

-- "The newest sent invoice to this chat for this link".
CREATE INDEX outbox_by_link ON outbox (link_id, channel, chat_id, kind, id)
    WHERE link_id IS NOT NULL;

-- Chat messages as received, stored before the channel gets its acknowledgement.
-- `seq` is an explicit rowid so that VACUUM keeps the received order.
CREATE TABLE inbound_messages (
    seq         INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL CHECK (channel <> ''),
    chat_id     TEXT NOT NULL CHECK (chat_id <> ''),
    message_id  TEXT NOT NULL CHECK (message_id <> ''),
    text        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    handled_at  TEXT,
    UNIQUE (channel, message_id)
);

CREATE INDEX inbound_messages_unhandled ON inbound_messages (seq) WHERE handled_at IS NULL;

-- When each chat last wrote to us: WhatsApp only lets a business send free-form
-- messages within 24 hours of the customer's last message.
CREATE TABLE contacts (
    channel         TEXT NOT NULL CHECK (channel <> ''),
    chat_id         TEXT NOT NULL CHECK (chat_id <> ''),
    last_inbound_at TEXT NOT NULL,
    PRIMARY KEY (channel, chat_id)
) WITHOUT ROWID;
