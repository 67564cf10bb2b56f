-- A contact made by the widget for a visitor the client's own backend vouched for (a signed
-- identity: HMAC-SHA256 with the client's widget secret) carries that visitor's id.
ALTER TABLE contacts ADD COLUMN external_user_id TEXT;
CREATE INDEX contacts_by_external_user ON contacts (client_id, external_user_id);

INSERT INTO schema_version (version, name) VALUES (8, 'widget_identity');
