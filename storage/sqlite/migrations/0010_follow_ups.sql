-- Follow-ups of links due at a time (bot/follow_ups.py): reminders, the failed
-- payment's "try again", the expiry warning and offer. The unique key makes each one
-- once, however often or by whomever it is scheduled; a claim under a lease makes
-- one worker handle it, and `done_at`, set in the transaction that queues its
-- messages, makes it said once.
CREATE TABLE follow_ups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    link_id     TEXT NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN (
                    'reminder', 'failed_reminder', 'expiry_warning', 'expired_offer')),
    mark        TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    claimed_by  TEXT,
    lease_until TEXT,
    done_at     TEXT,
    UNIQUE (link_id, kind, mark)
);

CREATE INDEX follow_ups_due ON follow_ups (due_at) WHERE done_at IS NULL;
