-- The data shards' schema (SHARD_0, SHARD_1, ...): every table outside the control plane as the
-- control plane's migrations 0001-0025 leave it, less the references to control-plane tables (a
-- shard holds no directory rows, and D1 enforces foreign keys). tests/api/schema.rs holds the two
-- to each other; a later change to a shard table is a migration in both directories.

CREATE TABLE appointments (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  service_id TEXT NOT NULL REFERENCES services (id),
  staff_id TEXT NOT NULL REFERENCES staff (id),
  contact_id TEXT REFERENCES contacts (id) ON DELETE SET NULL,
  starts_at INTEGER NOT NULL,
  ends_at INTEGER NOT NULL CHECK (ends_at > starts_at),
  -- The range the staff member is busy: the slot widened by the service's buffers.
  blocked_from INTEGER NOT NULL,
  blocked_until INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'confirmed', 'completed', 'cancelled')),
  source TEXT NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'widget', 'portal')),
  note TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
, submission_id TEXT);

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
, seq INTEGER, prev_hash TEXT, hash TEXT);

CREATE TABLE client_settings (
  client_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  field TEXT NOT NULL,
  ciphertext TEXT NOT NULL,
  key_id TEXT NOT NULL,
  updated_by TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (client_id, provider, field)
);

CREATE TABLE contact_tags (
  client_id TEXT NOT NULL,
  contact_id TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
  tag_id TEXT NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (client_id, contact_id, tag_id)
);

CREATE TABLE contacts (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  name TEXT NOT NULL,
  email TEXT,
  phone TEXT,
  message TEXT,
  source TEXT NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'widget', 'import')),
  origin TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
, submission_id TEXT, external_user_id TEXT);

CREATE TABLE deal_stage_history (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  deal_id TEXT NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
  from_stage_id TEXT,
  to_stage_id TEXT NOT NULL,
  moved_by TEXT,
  moved_at INTEGER NOT NULL
);

CREATE TABLE deals (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  pipeline_id TEXT NOT NULL REFERENCES pipelines (id),
  stage_id TEXT NOT NULL REFERENCES pipeline_stages (id),
  title TEXT NOT NULL,
  -- Minor units (cents) of `currency`, an ISO 4217 code.
  value_minor INTEGER NOT NULL DEFAULT 0 CHECK (value_minor >= 0),
  currency TEXT NOT NULL,
  contact_id TEXT REFERENCES contacts (id) ON DELETE SET NULL,
  owner_user_id TEXT,
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
  lost_reason TEXT,
  expected_close_date TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  closed_at INTEGER
);

CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  client_id TEXT NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  dispatched_at INTEGER
);

CREATE TABLE exports (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
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
, link_nonce TEXT NOT NULL DEFAULT '');

CREATE TABLE notes (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  subject_type TEXT NOT NULL CHECK (subject_type IN ('contact', 'deal')),
  subject_id TEXT NOT NULL,
  body TEXT NOT NULL,
  author_user_id TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE pipeline_stages (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  pipeline_id TEXT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  position INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE pipelines (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE services (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  name TEXT NOT NULL,
  duration_min INTEGER NOT NULL CHECK (duration_min BETWEEN 5 AND 720),
  price_minor INTEGER NOT NULL DEFAULT 0 CHECK (price_minor >= 0),
  currency TEXT NOT NULL DEFAULT 'USD',
  buffer_before_min INTEGER NOT NULL DEFAULT 0 CHECK (buffer_before_min BETWEEN 0 AND 240),
  buffer_after_min INTEGER NOT NULL DEFAULT 0 CHECK (buffer_after_min BETWEEN 0 AND 240),
  active INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE staff (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  name TEXT NOT NULL,
  user_id TEXT,
  active INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE staff_hours (
  client_id TEXT NOT NULL,
  staff_id TEXT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
  weekday INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
  start_min INTEGER NOT NULL CHECK (start_min BETWEEN 0 AND 1439),
  end_min INTEGER NOT NULL CHECK (end_min BETWEEN 1 AND 1440 AND end_min > start_min)
);

CREATE TABLE staff_services (
  client_id TEXT NOT NULL,
  staff_id TEXT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
  service_id TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
  PRIMARY KEY (client_id, staff_id, service_id)
);

CREATE TABLE tags (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  name TEXT NOT NULL,
  color TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE tenant_daily (
  tenant_id TEXT NOT NULL,
  day INTEGER NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  errors INTEGER NOT NULL DEFAULT 0,
  widget_allowed INTEGER NOT NULL DEFAULT 0,
  widget_denied INTEGER NOT NULL DEFAULT 0,
  leads INTEGER NOT NULL DEFAULT 0,
  bookings INTEGER NOT NULL DEFAULT 0,
  last_widget_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, day)
);

CREATE TABLE time_off (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  staff_id TEXT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
  start_date TEXT NOT NULL,
  end_date TEXT NOT NULL CHECK (end_date >= start_date),
  reason TEXT,
  created_at INTEGER NOT NULL
);

CREATE TABLE usage_counters (
  tenant_id TEXT NOT NULL,
  metric TEXT NOT NULL,
  period INTEGER NOT NULL,
  count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, metric, period)
);

CREATE TABLE usage_events (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  metric TEXT NOT NULL,
  threshold INTEGER NOT NULL CHECK (threshold IN (80, 100)),
  used INTEGER NOT NULL,
  quota INTEGER NOT NULL,
  at INTEGER NOT NULL
);

CREATE TABLE webhook_attempts (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status_code INTEGER,
  latency_ms INTEGER NOT NULL,
  error TEXT,
  response_head TEXT,
  UNIQUE (delivery_id, attempt)
);

CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  event_id TEXT NOT NULL REFERENCES events (id),
  event_seq INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  -- `attempts` when the delivery was last replayed: the retry budget counts from there.
  replay_base INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_until INTEGER,
  queued_at INTEGER,
  last_status_code INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (endpoint_id, event_id)
);

CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  url TEXT NOT NULL,
  description TEXT,
  event_types TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  disabled_reason TEXT,
  secret_sealed TEXT NOT NULL,
  previous_secret_sealed TEXT,
  previous_secret_expires_at INTEGER,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  last_success_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE INDEX appointments_by_client ON appointments (client_id, id);

CREATE INDEX appointments_by_contact ON appointments (client_id, contact_id);

CREATE INDEX appointments_by_staff ON appointments (client_id, staff_id, blocked_from);

CREATE INDEX appointments_by_start ON appointments (client_id, starts_at);

CREATE UNIQUE INDEX appointments_by_submission ON appointments (client_id, submission_id);

CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, at);

CREATE INDEX audit_log_by_tenant_at_id ON audit_log (tenant_id, at, id);

CREATE UNIQUE INDEX audit_log_chain ON audit_log (tenant_id, seq);

CREATE INDEX audit_log_unsealed ON audit_log (tenant_id) WHERE hash IS NULL;

CREATE INDEX client_settings_by_key ON client_settings (key_id);

CREATE INDEX contact_tags_by_client ON contact_tags (client_id);

CREATE INDEX contact_tags_by_tag ON contact_tags (client_id, tag_id, contact_id);

CREATE INDEX contacts_by_client ON contacts (client_id, id);

CREATE INDEX contacts_by_email ON contacts (client_id, email COLLATE NOCASE);

CREATE INDEX contacts_by_external_user ON contacts (client_id, external_user_id);

CREATE INDEX contacts_by_name ON contacts (client_id, name COLLATE NOCASE);

CREATE UNIQUE INDEX contacts_by_submission ON contacts (client_id, submission_id);

CREATE INDEX deal_history_by_client ON deal_stage_history (client_id, id);

CREATE INDEX deal_history_by_deal ON deal_stage_history (client_id, deal_id, moved_at);

CREATE INDEX deals_by_client ON deals (client_id, id);

CREATE INDEX deals_by_contact ON deals (client_id, contact_id);

CREATE INDEX deals_by_pipeline ON deals (client_id, pipeline_id, status, stage_id);

CREATE INDEX deals_by_stage ON deals (client_id, stage_id, id);

CREATE INDEX events_by_client ON events (client_id, seq);

CREATE INDEX events_undispatched ON events (seq) WHERE dispatched_at IS NULL;

CREATE INDEX exports_by_client ON exports (client_id, id);

CREATE INDEX exports_by_status ON exports (status, updated_at);

CREATE INDEX files_by_status ON files (status, created_at);

CREATE INDEX files_by_tenant ON files (tenant_id, status, id);

CREATE INDEX files_by_tenant_id ON files (tenant_id, id);

CREATE INDEX notes_by_client ON notes (client_id, id);

CREATE INDEX notes_by_subject ON notes (client_id, subject_type, subject_id, id);

CREATE INDEX pipelines_by_client ON pipelines (client_id, id);

CREATE INDEX services_by_client ON services (client_id, id);

CREATE INDEX staff_by_client ON staff (client_id, id);

CREATE INDEX staff_hours_by_staff ON staff_hours (client_id, staff_id, weekday);

CREATE INDEX staff_services_by_service ON staff_services (client_id, service_id);

CREATE INDEX stages_by_client_id ON pipeline_stages (client_id, id);

CREATE INDEX stages_by_pipeline ON pipeline_stages (client_id, pipeline_id, position);

CREATE INDEX tags_by_client_id ON tags (client_id, id);

CREATE UNIQUE INDEX tags_by_name ON tags (client_id, name COLLATE NOCASE);

CREATE INDEX time_off_by_client_id ON time_off (client_id, id);

CREATE INDEX time_off_by_staff ON time_off (client_id, staff_id, start_date);

CREATE INDEX usage_counters_by_tenant ON usage_counters (tenant_id);

CREATE INDEX usage_events_by_client ON usage_events (client_id, at);

CREATE INDEX usage_events_by_client_id ON usage_events (client_id, id);

CREATE INDEX webhook_attempts_by_client ON webhook_attempts (client_id, id);

CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (client_id, delivery_id, attempt);

CREATE INDEX webhook_deliveries_by_client ON webhook_deliveries (client_id, id);

CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (client_id, endpoint_id, event_seq);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE INDEX webhook_endpoints_by_client ON webhook_endpoints (client_id, id);

CREATE TRIGGER contacts_count_widget_submissions AFTER INSERT ON contacts WHEN NEW.source = 'widget'
BEGIN
  INSERT INTO usage_counters (tenant_id, metric, period, count)
  VALUES (NEW.client_id, 'widget_submissions', CAST(NEW.created_at / 86400000 AS INTEGER), 1)
  ON CONFLICT (tenant_id, metric, period) DO UPDATE SET count = count + 1;
END;

