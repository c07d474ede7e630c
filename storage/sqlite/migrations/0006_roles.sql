-- Work one process at a time does (the overall send rate, the poll budget, Telegram's
-- long polling), held under a lease as an order claim is.
CREATE TABLE roles (
    name   TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    until  TEXT NOT NULL
) WITHOUT ROWID;
