-- A client's non-secret preferences (locale, currency, week start, date format), each from a
-- typed allowlist; the time zone stays its own column.
ALTER TABLE clients ADD COLUMN preferences TEXT NOT NULL DEFAULT '{}';

INSERT INTO schema_version (version, name) VALUES (20, 'preferences');
