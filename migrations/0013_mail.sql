-- Mail delivery: the outbox rows are handed to the mail API (MAIL_API_URL), retried, and end
-- `sent` or `failed`. Without a mail API the outbox is the development mailbox.
ALTER TABLE outbox ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
CREATE INDEX outbox_due ON outbox (created_at) WHERE status = 'pending';

INSERT INTO schema_version (version, name) VALUES (13, 'mail');
