-- A claim walks the oldest waiting rows first again (storage/postgres/outbox.py,
-- inbox.py): when many lanes wait, most of those are heads, and the skip scan
-- over every lane that 0002 left as the only way is then the slower one. The
-- walk needs the waiting rows in id and seq order, as in 0001.
CREATE INDEX outbox_unsent_by_id ON outbox (id) WHERE sent_at IS NULL AND dropped_at IS NULL;
CREATE INDEX inbox_waiting ON inbox (seq) WHERE finished_at IS NULL AND set_aside_at IS NULL;
