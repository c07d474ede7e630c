-- The language each chat chose with /lang; a chat without a row speaks PAYBOT_LANGUAGE.
CREATE TABLE chat_settings (
    channel  TEXT NOT NULL,
    chat_id  TEXT NOT NULL,
    language TEXT NOT NULL,
    PRIMARY KEY (channel, chat_id)
) WITHOUT ROWID;
