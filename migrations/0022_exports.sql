-- Data exports: every row a client owns (from the schema's tenancy map) as JSON lines, and its
-- files, written step by step into one tar archive in R2 through a multipart upload. The row is
-- the job's whole state, so a step that dies is simply run again: `phase`/`cursor` say where the
-- next step starts, `parts` which parts are uploaded, and `pending_key` the object holding the
-- bytes that do not fill a part yet (a new key each step, so a rerun never reads its own output).
CREATE TABLE exports (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'ready', 'failed', 'expired')),
  requested_by TEXT,
  object_key TEXT NOT NULL UNIQUE,
  upload_id TEXT,
  parts TEXT NOT NULL DEFAULT '[]',
  phase INTEGER NOT NULL DEFAULT 0,
  cursor INTEGER NOT NULL DEFAULT 0,
  file_cursor TEXT NOT NULL DEFAULT '',
  chunk INTEGER NOT NULL DEFAULT 0,
  pending_key TEXT,
  pending_bytes INTEGER NOT NULL DEFAULT 0,
  counts TEXT NOT NULL DEFAULT '{}',
  rows INTEGER NOT NULL DEFAULT 0,
  files INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL DEFAULT 0,
  etag TEXT,
  link_nonce TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER,
  error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER,
  expires_at INTEGER
);
CREATE INDEX exports_by_client ON exports (client_id, id);
CREATE INDEX exports_by_status ON exports (status, updated_at);

INSERT INTO schema_version (version, name) VALUES (22, 'exports');
