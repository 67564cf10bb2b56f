-- Agency portals: `{agency-slug}.{PORTAL_BASE_DOMAIN}` and an agency's own verified portal
-- domains resolve to the agency.

-- A portal slug names one tenant, so a slug is unique across agencies and clients together.
-- The triggers decide inside the writing statement, so two creations racing for one slug
-- cannot both win; their message reads as a unique violation, which the API reports as 409.
CREATE TRIGGER agencies_slug_not_a_clients BEFORE INSERT ON agencies
WHEN EXISTS (SELECT 1 FROM clients WHERE slug = NEW.slug)
BEGIN
  SELECT RAISE(ABORT, 'UNIQUE constraint failed: tenants.slug');
END;

CREATE TRIGGER agencies_slug_change_not_a_clients BEFORE UPDATE OF slug ON agencies
WHEN EXISTS (SELECT 1 FROM clients WHERE slug = NEW.slug)
BEGIN
  SELECT RAISE(ABORT, 'UNIQUE constraint failed: tenants.slug');
END;

CREATE TRIGGER clients_slug_not_an_agencys BEFORE INSERT ON clients
WHEN EXISTS (SELECT 1 FROM agencies WHERE slug = NEW.slug)
BEGIN
  SELECT RAISE(ABORT, 'UNIQUE constraint failed: tenants.slug');
END;

CREATE TRIGGER clients_slug_change_not_an_agencys BEFORE UPDATE OF slug ON clients
WHEN EXISTS (SELECT 1 FROM agencies WHERE slug = NEW.slug)
BEGIN
  SELECT RAISE(ABORT, 'UNIQUE constraint failed: tenants.slug');
END;

-- An agency's claims on portal hostnames, proved like a client's domains by a TXT record at
-- `_gatehouse-challenge.{hostname}`. Exact hostnames only. Several agencies may claim one name;
-- the first to prove it wins, decided inside the verifying statement, against other agencies'
-- verified claims and clients' verified portal domains alike.
CREATE TABLE agency_domains (
  id TEXT PRIMARY KEY,
  agency_id TEXT NOT NULL REFERENCES agencies (id),
  hostname TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified', 'failed', 'lapsed')),
  status_reason TEXT,
  verification_token TEXT NOT NULL,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  verified_at INTEGER,
  last_checked_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (agency_id, hostname)
);
CREATE INDEX agency_domains_by_hostname ON agency_domains (hostname, status);
CREATE INDEX agency_domains_due ON agency_domains (status, last_checked_at);

-- Audit pages go by time (ids are random), either way; `id` breaks ties within a millisecond.
CREATE INDEX audit_log_by_tenant_at_id ON audit_log (tenant_id, at, id);

INSERT INTO schema_version (version, name) VALUES (23, 'agency_portals');
