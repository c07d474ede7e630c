-- The claims and due times of the outbox and the inbox now find each lane's head
-- by a skip scan of outbox_unsent and inbox_waiting_by_lane (one index descent a
-- lane), no longer by walking every waiting row in id or seq order. The indexes
-- that walk used would only be kept up to date on every enqueue and record.
DROP INDEX outbox_unsent_by_id;
DROP INDEX inbox_waiting;
