-- Tamper evidence for the audit log. Each tenant's rows get a sequence (assigned inside the row's
-- own INSERT, so concurrent writers cannot fork it) and, once sealed, the previous row's hash and
-- their own: SHA-256 over the row's canonical fields and the previous hash.
ALTER TABLE audit_log ADD COLUMN seq INTEGER;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
-- Rows written before this migration join the chain in the order they were written.
UPDATE audit_log SET seq = (SELECT count(*) FROM audit_log b WHERE b.tenant_id = audit_log.tenant_id AND b.id <= audit_log.id);
CREATE UNIQUE INDEX audit_log_chain ON audit_log (tenant_id, seq);
CREATE INDEX audit_log_unsealed ON audit_log (tenant_id) WHERE hash IS NULL;

INSERT INTO schema_version (version, name) VALUES (17, 'audit_chain');
