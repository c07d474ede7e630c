-- Senders' budgets (bot/limits.py): a stranger's one answer a minute, a merchant's
-- commands that reach Cimplify. `whole_at` is when the key's budget is whole again;
-- a key whose budget is whole is as good as no row, and housekeeping deletes it.
CREATE TABLE limits (
    key      text PRIMARY KEY,
    whole_at timestamptz NOT NULL
);

CREATE INDEX limits_whole ON limits (whole_at);
