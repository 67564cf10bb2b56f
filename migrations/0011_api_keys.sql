-- API keys: programmatic access for a client's or an agency's integrations. The key itself is shown
-- once (`gh_live_…`); only its SHA-256 is stored. A key holds a role's permission set, narrowed to
-- no more than its creator held, and is confined to its tenant exactly as a membership is.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  -- The client or agency the key acts in.
  tenant_id TEXT NOT NULL,
  name TEXT NOT NULL,
  -- The first characters of the key, shown in lists so people can tell their keys apart.
  prefix TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('agency_admin', 'client_admin')),
  permissions TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  last_used_at INTEGER,
  revoked_at INTEGER
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);

INSERT INTO schema_version (version, name) VALUES (11, 'api_keys');
