-- paybot's schema on PostgreSQL. Times are timestamptz; money is numeric without a
-- declared scale, so that 75.00 reads back as 75.00; JSON is jsonb. Several
-- processes share these tables: claims are leases (`claimed_until`, `until`) that
-- another process may take over once they end.

CREATE TABLE links (
    -- Insertion order, to break ties between links created at the same instant.
    seq               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id                text PRIMARY KEY,
    order_id          text NOT NULL CHECK (length(order_id) BETWEEN 1 AND 64),
    token             text NOT NULL UNIQUE CHECK (token <> ''),
    url               text NOT NULL,
    expires_at        timestamptz NOT NULL,
    business_name     text NOT NULL,
    currency          text NOT NULL CHECK (length(currency) = 3),
    total             numeric NOT NULL,
    line_items        jsonb NOT NULL CHECK (jsonb_typeof(line_items) = 'array'),
    status            text NOT NULL CHECK (status IN (
                          'pending', 'processing', 'awaiting_authorization',
                          'paid', 'failed', 'expired')),
    created_at        timestamptz NOT NULL,
    status_changed_at timestamptz NOT NULL,
    confirmed_at      timestamptz,
    reference         text,
    next_poll_at      timestamptz,
    -- What a customer's Telegram deep link carries: unguessable, not the token.
    share_code        text NOT NULL UNIQUE CHECK (share_code <> ''),
    -- A confirmed link is a paid link: nothing may move it elsewhere.
    CHECK (confirmed_at IS NULL OR status = 'paid')
);

CREATE INDEX links_by_order ON links (order_id, created_at, seq);
CREATE INDEX links_due ON links (next_poll_at) WHERE next_poll_at IS NOT NULL;
-- Moving payments are polled first; the status test must match the claim's
-- (storage/postgres/links.py) for the planner to use this index.
CREATE INDEX links_moving_due ON links (next_poll_at)
    WHERE next_poll_at IS NOT NULL AND status IN ('processing', 'awaiting_authorization');

CREATE TABLE status_history (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    link_id   text NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    -- NULL stands for the confirmation (a verified webhook), not a status.
    status    text CHECK (status IS NULL OR status IN (
                  'pending', 'processing', 'awaiting_authorization',
                  'paid', 'failed', 'expired')),
    at        timestamptz NOT NULL,
    reference text
);

CREATE INDEX status_history_by_link ON status_history (link_id, id);

-- Who is asking Cimplify for a link for an order: one process at a time, until
-- `until`, so that an order gets one link however many processes are asked.
CREATE TABLE order_claims (
    order_id text PRIMARY KEY,
    holder   text NOT NULL,
    until    timestamptz NOT NULL
);

CREATE TABLE subscriptions (
    -- The order chats subscribed in.
    seq        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    link_id    text NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    channel    text NOT NULL CHECK (channel <> ''),
    chat_id    text NOT NULL CHECK (chat_id <> ''),
    role       text NOT NULL CHECK (role IN ('merchant', 'customer')),
    message_id text,
    PRIMARY KEY (link_id, channel, chat_id)
);

CREATE INDEX subscriptions_by_chat ON subscriptions (channel, chat_id);

-- One row a chat: its sequence of queued messages and its pause. Enqueuing takes
-- the row's lock to number a message, so one chat's messages are numbered in the
-- order their transactions commit, whichever process enqueues them.
CREATE TABLE outbox_lanes (
    channel      text NOT NULL,
    chat_id      text NOT NULL,
    last_seq     bigint NOT NULL,
    paused_until timestamptz,
    PRIMARY KEY (channel, chat_id)
);

CREATE TABLE outbox (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel            text NOT NULL CHECK (channel <> ''),
    chat_id            text NOT NULL CHECK (chat_id <> ''),
    lane_seq           bigint NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('text', 'invoice', 'caption')),
    text               text NOT NULL,
    link_id            text REFERENCES links (id),
    buttons            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(buttons) = 'array'),
    created_at         timestamptz NOT NULL,
    attempts           integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at    timestamptz NOT NULL,
    claimed_by         text,
    claimed_until      timestamptz,
    sent_at            timestamptz,
    dropped_at         timestamptz,
    last_error         text,
    -- The channel's id for the sent message (Telegram's message_id, Twilio's
    -- MessageSid) and what the channel last reported of it.
    remote_id          text,
    delivery_status    text CHECK (
        delivery_status IS NULL OR delivery_status IN ('sent', 'delivered', 'read', 'failed')),
    delivery_status_at timestamptz,
    UNIQUE (channel, chat_id, lane_seq),
    CHECK (kind = 'text' OR link_id IS NOT NULL),
    CHECK (sent_at IS NULL OR dropped_at IS NULL)
);

-- Each chat's queue of unsent messages, in order: its head is the lowest lane_seq.
CREATE INDEX outbox_unsent ON outbox (channel, chat_id, lane_seq)
    WHERE sent_at IS NULL AND dropped_at IS NULL;
-- The claim walks unsent messages oldest first and stops at `limit` heads.
CREATE INDEX outbox_unsent_by_id ON outbox (id) WHERE sent_at IS NULL AND dropped_at IS NULL;
-- Telegram's message ids are unique per chat only, so this index is not UNIQUE.
CREATE INDEX outbox_by_remote_id ON outbox (channel, remote_id) WHERE remote_id IS NOT NULL;
-- "The newest sent invoice to this chat for this link".
CREATE INDEX outbox_by_link ON outbox (link_id, channel, chat_id, kind, id)
    WHERE link_id IS NOT NULL;

-- A receipt can outrun the answer to the send it reports on (Twilio posts the
-- status callback while paybot is still reading the MessageSid). Such a receipt
-- waits here, keyed by the channel's id, until the send is recorded.
CREATE TABLE early_receipts (
    channel   text NOT NULL,
    remote_id text NOT NULL,
    status    text NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
    at        timestamptz NOT NULL,
    PRIMARY KEY (channel, remote_id)
);

-- One row a lane of the inbox. Recording into a lane updates its row, so that
-- transactions recording into one lane take their turns: within a lane, `seq`
-- order is then commit order, and an entry committed late can never come before
-- one a worker has already claimed.
CREATE TABLE inbox_lanes (
    lane     text PRIMARY KEY,
    recorded bigint NOT NULL  -- entries given for the lane, repeats included
);

-- Every input (webhooks, chat messages, Telegram updates), stored before it is
-- acknowledged. `seq` is the stored order; a lane's entries are handled in it.
CREATE TABLE inbox (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          text NOT NULL CHECK (source <> ''),
    source_id       text NOT NULL CHECK (source_id <> ''),
    kind            text NOT NULL CHECK (kind <> ''),
    lane            text NOT NULL CHECK (lane <> ''),
    body            text NOT NULL,
    received_at     timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    claimed_by      text,
    claimed_until   timestamptz,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    finished_at     timestamptz,
    set_aside_at    timestamptz,
    last_error      text,
    UNIQUE (source, source_id)
);

-- The claim walks waiting entries oldest first; each lane's head is its lowest seq.
CREATE INDEX inbox_waiting ON inbox (seq) WHERE finished_at IS NULL AND set_aside_at IS NULL;
CREATE INDEX inbox_waiting_by_lane ON inbox (lane, seq)
    WHERE finished_at IS NULL AND set_aside_at IS NULL;
CREATE INDEX inbox_finished ON inbox (finished_at) WHERE finished_at IS NOT NULL;

-- When each chat last wrote to us: WhatsApp only lets a business send free-form
-- messages within 24 hours of the customer's last message.
CREATE TABLE contacts (
    channel         text NOT NULL CHECK (channel <> ''),
    chat_id         text NOT NULL CHECK (chat_id <> ''),
    last_inbound_at timestamptz NOT NULL,
    PRIMARY KEY (channel, chat_id)
);
