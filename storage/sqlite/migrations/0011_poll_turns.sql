-- The Pay API budget (PAYBOT_POLL_RATE) as turns shared by every process: the time
-- of the next free turn. The poller and any process's /status reserve turns here, so
-- the rate holds for all of them together (bot/tracking.py).
CREATE TABLE poll_turns (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    next_at TEXT NOT NULL
);

INSERT INTO poll_turns (id, next_at) VALUES (1, '1970-01-01T00:00:00.000000+00:00');
