-- Tenancy core: agencies, clients, users, memberships, the audit log and login throttling.
-- Every tenant-owned table carries a NOT NULL tenant column with an index (see ARCHITECTURE.md).

CREATE TABLE schema_version (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL
);

CREATE TABLE agencies (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  slug TEXT NOT NULL UNIQUE,
  email TEXT,
  phone TEXT,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  plan TEXT NOT NULL DEFAULT 'starter',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE clients (
  id TEXT PRIMARY KEY,
  agency_id TEXT NOT NULL REFERENCES agencies (id),
  name TEXT NOT NULL,
  slug TEXT NOT NULL UNIQUE,
  business_type TEXT,
  kind TEXT NOT NULL DEFAULT 'organization' CHECK (kind IN ('individual', 'organization')),
  email TEXT,
  phone TEXT,
  website TEXT,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  plan TEXT NOT NULL DEFAULT 'starter',
  feature_flags TEXT NOT NULL DEFAULT '{}',
  test_mode INTEGER NOT NULL DEFAULT 0,
  publishable_key TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX clients_by_agency ON clients (agency_id, id);

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL,
  platform_role TEXT CHECK (platform_role IN ('platform_admin')),
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE agency_memberships (
  user_id TEXT NOT NULL REFERENCES users (id),
  agency_id TEXT NOT NULL REFERENCES agencies (id),
  role TEXT NOT NULL CHECK (role IN ('agency_admin', 'agency_user')),
  permissions TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, agency_id)
);
CREATE INDEX agency_memberships_by_agency ON agency_memberships (agency_id);

-- The ClientUser junction.
CREATE TABLE client_users (
  user_id TEXT NOT NULL REFERENCES users (id),
  client_id TEXT NOT NULL REFERENCES clients (id),
  role TEXT NOT NULL CHECK (role IN ('client_admin', 'client_user', 'client_viewer')),
  permissions TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, client_id)
);
CREATE INDEX client_users_by_client ON client_users (client_id);

-- tenant_id is a client id, an agency id, or 'platform'.
CREATE TABLE audit_log (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  actor_user_id TEXT,
  actor_role TEXT,
  action TEXT NOT NULL,
  target_type TEXT NOT NULL,
  target_id TEXT,
  ip TEXT,
  user_agent TEXT,
  metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, at);

CREATE TABLE login_attempts (
  key TEXT PRIMARY KEY,
  window_start INTEGER NOT NULL,
  failures INTEGER NOT NULL
);

INSERT INTO schema_version (version, name) VALUES (1, 'tenancy');
