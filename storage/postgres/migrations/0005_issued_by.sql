-- Merchants' roles (bot/access.py): who issued each link, "<channel>:<sender id>".
-- NULL for links issued before roles existed: those belong to owners only.
ALTER TABLE links ADD COLUMN issued_by text CHECK (issued_by IS NULL OR issued_by <> '');

CREATE INDEX links_by_issuer ON links (issued_by, created_at) WHERE issued_by IS NOT NULL;

-- /cancel: a link's status may be 'cancelled'.
ALTER TABLE links DROP CONSTRAINT links_status_check,
    ADD CONSTRAINT links_status_check CHECK (status IN (
        'pending', 'processing', 'awaiting_authorization',
        'paid', 'failed', 'expired', 'cancelled'));

ALTER TABLE status_history DROP CONSTRAINT status_history_status_check,
    ADD CONSTRAINT status_history_status_check CHECK (status IS NULL OR status IN (
        'pending', 'processing', 'awaiting_authorization',
        'paid', 'failed', 'expired', 'cancelled'));
