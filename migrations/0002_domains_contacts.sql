-- Verified domains (the widget gate and portal hosts) and the contacts the widget collects.

CREATE TABLE domains (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  -- Normalised pattern: an A-label hostname, or `*.` and one, for subdomains only.
  hostname TEXT NOT NULL UNIQUE,
  scheme TEXT NOT NULL DEFAULT 'https' CHECK (scheme IN ('http', 'https')),
  -- NULL is the scheme's default port.
  port INTEGER CHECK (port IS NULL OR (port BETWEEN 1 AND 65535)),
  purpose TEXT NOT NULL CHECK (purpose IN ('widget', 'portal', 'both')),
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified', 'failed', 'lapsed')),
  status_reason TEXT,
  verification_token TEXT NOT NULL,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  verified_at INTEGER,
  last_checked_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX domains_by_client ON domains (client_id, status);
CREATE INDEX domains_verified ON domains (status, last_checked_at);

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
