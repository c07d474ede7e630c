-- The merchant's day: when each link was paid, the daily digest sent once a chat a
-- day, and the /export files that a WhatsApp media URL serves for a day.

-- When the link became paid. Whichever statement makes a link paid (a poll's
-- move_status, a webhook's confirm, a link stored already paid), the trigger keeps
-- the moment, so the day's report and the export need no status history (which
-- housekeeping forgets). A move to paid sets status_changed_at; a confirmation from
-- another status sets only confirmed_at.
ALTER TABLE links ADD COLUMN paid_at timestamptz;

UPDATE links SET paid_at = COALESCE(
    (SELECT min(at) FROM status_history AS h
     WHERE h.link_id = links.id AND (h.status = 'paid' OR h.status IS NULL)),
    confirmed_at, status_changed_at)
WHERE status = 'paid';

CREATE FUNCTION paybot_links_paid_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'paid' AND NEW.paid_at IS NULL THEN
        IF TG_OP = 'UPDATE' AND OLD.status <> 'paid'
                AND NEW.status_changed_at IS DISTINCT FROM OLD.status_changed_at THEN
            NEW.paid_at := NEW.status_changed_at;
        ELSE
            NEW.paid_at := COALESCE(NEW.confirmed_at, NEW.status_changed_at);
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER links_paid_at BEFORE INSERT OR UPDATE OF status, confirmed_at ON links
    FOR EACH ROW EXECUTE FUNCTION paybot_links_paid_at();

CREATE INDEX links_by_created ON links (created_at);
CREATE INDEX links_by_paid ON links (paid_at) WHERE paid_at IS NOT NULL;

-- A digest is sent to a chat once for its local day: the row is inserted in the
-- transaction that queues the digest, and only the insert that took a row queues it.
CREATE TABLE digests (
    channel text NOT NULL CHECK (channel <> ''),
    chat_id text NOT NULL CHECK (chat_id <> ''),
    day     date NOT NULL,  -- in PAYBOT_TIMEZONE
    sent_at timestamptz NOT NULL,
    PRIMARY KEY (channel, chat_id, day)
);

-- /export files, kept whole so that any instance can serve one (the WhatsApp media
-- URL) until it expires; housekeeping deletes them after.
CREATE TABLE exports (
    id         text PRIMARY KEY CHECK (length(id) >= 16),
    filename   text NOT NULL,
    content    bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX exports_by_expiry ON exports (expires_at);

-- A message may carry an export as its file (a Telegram document, a WhatsApp media URL).
ALTER TABLE outbox ADD COLUMN attachment text;
