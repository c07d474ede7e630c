-- Payments in progress are polled first (storage/sqlite.py due_links). This index
-- finds the overdue ones without sorting every overdue link, which at 10,000 idle
-- links cost more than the poll itself.
CREATE INDEX links_moving_due ON links (next_poll_at)
    WHERE next_poll_at IS NOT NULL AND status IN ('processing', 'awaiting_authorization');
