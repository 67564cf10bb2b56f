-- Verified domains (the widget gate and portal hosts) and the contacts the widget collects.

CREATE TABLE domains (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  -- Normalised pattern: an A-label hostname, or `*.` and one, for subdomains only.
  hostname TEXT NOT NULL UNIQUE,
  -- The registrable domain (eTLD+1) the pattern lives in. Overlapping patterns always share it,
  -- so the cross-tenant overlap check reads one site's rows through an index.
  site TEXT NOT NULL,
  scheme TEXT NOT NULL DEFAULT 'https' CHECK (scheme IN ('http', 'https')),
  -- NULL is the scheme's default port.
  port INTEGER CHECK (port IS NULL OR (port BETWEEN 1 AND 65535)),
  purpose TEXT NOT NULL CHECK (purpose IN ('widget', 'portal', 'both')),
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified', 'failed', 'lapsed')),
  status_reason TEXT,
  -- 'dns' for a TXT proof, 'admin' for a platform admin's force-verify (exempt from re-checks).
  verified_by TEXT CHECK (verified_by IN ('dns', 'admin')),
  verification_token TEXT NOT NULL,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  verified_at INTEGER,
  last_checked_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX domains_by_client ON domains (client_id, status);
CREATE INDEX domains_verified ON domains (status, last_checked_at);
CREATE INDEX domains_by_site ON domains (site);

CREATE TABLE contacts (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  name TEXT NOT NULL,
  email TEXT,
  phone TEXT,
  message TEXT,
  source TEXT NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'widget', 'import')),
  origin TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX contacts_by_client ON contacts (client_id, id);

INSERT INTO schema_version (version, name) VALUES (2, 'domains_contacts');
