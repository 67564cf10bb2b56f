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
  -- The last key read in the current table (its id, seq or rowid, as text).
  cursor TEXT NOT NULL DEFAULT '',
  file_cursor TEXT NOT NULL DEFAULT '',
  chunk INTEGER NOT NULL DEFAULT 0,
  pending_key TEXT,
  pending_bytes INTEGER NOT NULL DEFAULT 0,
  counts TEXT NOT NULL DEFAULT '{}',
  rows INTEGER NOT NULL DEFAULT 0,
  files INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL DEFAULT 0,
  -- Every part but the last is this size: at least R2's 5 MiB, more for a client whose files
  -- would otherwise need more than R2's 10,000 parts.
  part_size INTEGER NOT NULL DEFAULT 5242880,
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

-- An export pages each table by a key an index leading with the tenant column orders; these
-- tables had no such index, and can be large.
CREATE INDEX notes_by_client ON notes (client_id, id);
CREATE INDEX appointments_by_client ON appointments (client_id, id);
CREATE INDEX deal_history_by_client ON deal_stage_history (client_id, id);
CREATE INDEX webhook_deliveries_by_client ON webhook_deliveries (client_id, id);
CREATE INDEX webhook_attempts_by_client ON webhook_attempts (client_id, id);
CREATE INDEX outbox_by_tenant_id ON outbox (tenant_id, id);
CREATE INDEX files_by_tenant_id ON files (tenant_id, id);
CREATE INDEX domains_by_client_id ON domains (client_id, id);
CREATE INDEX invitations_by_tenant_id ON invitations (tenant_id, id);
CREATE INDEX tags_by_client_id ON tags (client_id, id);
CREATE INDEX stages_by_client_id ON pipeline_stages (client_id, id);
CREATE INDEX time_off_by_client_id ON time_off (client_id, id);
CREATE INDEX usage_events_by_client_id ON usage_events (client_id, id);
CREATE INDEX api_keys_by_tenant_id ON api_keys (tenant_id, id);
-- Keyless tables go by rowid, which an index on the tenant column alone keeps in order.
CREATE INDEX contact_tags_by_client ON contact_tags (client_id);
CREATE INDEX usage_counters_by_tenant ON usage_counters (tenant_id);

INSERT INTO schema_version (version, name) VALUES (22, 'exports');
