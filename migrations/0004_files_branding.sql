-- Tenant files (R2 objects with their metadata) and branding for clients and agencies.

-- A file row is `pending` while its R2 object is written, `ready` once both exist, and
-- `deleting` while the object is removed. Only `ready` rows are visible; the scheduled job
-- reconciles rows stuck in the other states, so no orphan object or dangling row survives.
CREATE TABLE files (
  id TEXT PRIMARY KEY,
  -- The owning tenant: a client id, or an agency id for agency branding assets.
  tenant_id TEXT NOT NULL,
  area TEXT NOT NULL CHECK (area IN ('uploads', 'branding')),
  object_key TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  etag TEXT,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'deleting')),
  uploaded_by TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX files_by_tenant ON files (tenant_id, status, id);
CREATE INDEX files_by_status ON files (status, created_at);

CREATE TABLE branding (
  owner_id TEXT NOT NULL PRIMARY KEY,
  owner_kind TEXT NOT NULL CHECK (owner_kind IN ('agency', 'client')),
  primary_color TEXT,
  secondary_color TEXT,
  tagline TEXT,
  support_email TEXT,
  support_phone TEXT,
  logo_file_id TEXT,
  favicon_file_id TEXT,
  custom_css TEXT,
  updated_by TEXT,
  updated_at INTEGER NOT NULL
);

INSERT INTO schema_version (version, name) VALUES (4, 'files_branding');
