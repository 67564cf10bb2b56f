-- Client templates: an agency's saved onboarding (plan, feature flags, branding, pipelines with
-- stages, services, enabled integrations; never secrets), one row per version. A client made from
-- one remembers the template and the version it is on, so a later version's additions can be
-- pushed to it without overwriting what changed since.
CREATE TABLE templates (
  id TEXT NOT NULL,
  agency_id TEXT NOT NULL REFERENCES agencies (id),
  version INTEGER NOT NULL CHECK (version >= 1),
  name TEXT NOT NULL,
  spec TEXT NOT NULL,
  created_by TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (id, version)
);
CREATE INDEX templates_by_agency ON templates (agency_id, id, version);

ALTER TABLE clients ADD COLUMN template_id TEXT;
ALTER TABLE clients ADD COLUMN template_version INTEGER;
-- The integration providers a client may store credentials for, as a JSON array; NULL: all.
ALTER TABLE clients ADD COLUMN integrations TEXT;
CREATE INDEX clients_by_template ON clients (agency_id, template_id, id) WHERE template_id IS NOT NULL;

INSERT INTO schema_version (version, name) VALUES (21, 'templates');
