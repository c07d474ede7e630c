-- Work one process at a time does (the overall send rate, the poll budget, Telegram's
-- long polling), held under a lease as an order claim is.
CREATE TABLE roles (
    name   text PRIMARY KEY,
    holder text NOT NULL,
    until  timestamptz NOT NULL
);

-- Work stored by any process wakes every process that listens (LISTEN paybot_work),
-- at its commit: the inbox's worker, the outbox's sender, the poller. One statement-
-- level trigger a table, so a batch makes one notice; PostgreSQL folds repeats of one
-- notice within a transaction into one.
CREATE FUNCTION paybot_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('paybot_work', TG_ARGV[0]);
    RETURN NULL;
END;
$$;

CREATE TRIGGER inbox_stored AFTER INSERT ON inbox
    FOR EACH STATEMENT EXECUTE FUNCTION paybot_notify_work('inbox');
CREATE TRIGGER outbox_queued AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION paybot_notify_work('outbox');
CREATE TRIGGER links_made AFTER INSERT ON links
    FOR EACH STATEMENT EXECUTE FUNCTION paybot_notify_work('polls');
