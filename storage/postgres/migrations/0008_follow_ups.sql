-- Follow-ups of links due at a time (bot/follow_ups.py): reminders, the failed
-- payment's "try again", the expiry warning and offer. The unique key makes each one
-- once, however often or by whomever it is scheduled; a claim under a lease (FOR
-- UPDATE SKIP LOCKED) makes one worker handle it, and `done_at`, set in the
-- transaction that queues its messages, makes it said once.
CREATE TABLE follow_ups (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    link_id     text NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN (
                    'reminder', 'failed_reminder', 'expiry_warning', 'expired_offer')),
    mark        text NOT NULL,
    due_at      timestamptz NOT NULL,
    claimed_by  text,
    lease_until timestamptz,
    done_at     timestamptz,
    UNIQUE (link_id, kind, mark)
);

CREATE INDEX follow_ups_due ON follow_ups (due_at) WHERE done_at IS NULL;

-- A follow-up scheduled by one process wakes the others' follow-up workers.
CREATE TRIGGER follow_ups_scheduled AFTER INSERT ON follow_ups
    FOR EACH STATEMENT EXECUTE FUNCTION paybot_notify_work('follow_ups');
