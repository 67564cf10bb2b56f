-- Deleting a client is soft first: it is suspended at once and restorable until `purge_after`,
-- after which the scheduled purge removes everything it owns. The status it had comes back on
-- restore.
ALTER TABLE clients ADD COLUMN deleted_at INTEGER;
ALTER TABLE clients ADD COLUMN purge_after INTEGER;
ALTER TABLE clients ADD COLUMN status_before_delete TEXT;
CREATE INDEX clients_due_for_purge ON clients (purge_after) WHERE deleted_at IS NOT NULL;

INSERT INTO schema_version (version, name) VALUES (19, 'offboarding');
