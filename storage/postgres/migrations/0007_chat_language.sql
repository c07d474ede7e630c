-- The language each chat chose with /lang; a chat without a row speaks PAYBOT_LANGUAGE.
CREATE TABLE chat_settings (
    channel  text NOT NULL,
    chat_id  text NOT NULL,
    language text NOT NULL,
    PRIMARY KEY (channel, chat_id)
);
