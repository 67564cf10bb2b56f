-- Events and outbound webhooks.
--
-- `events` is a transactional outbox: a change that matters writes its event in the same D1 batch
-- as the change itself (guarded by `changes() > 0` where the change may match nothing), so a change
-- without its event, or an event without its change, cannot happen. `seq` gives the order in which
-- events were recorded; `dispatched_at` is set once the event has been fanned out into deliveries.
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  client_id TEXT NOT NULL REFERENCES clients (id),
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  dispatched_at INTEGER
);
CREATE INDEX events_undispatched ON events (seq) WHERE dispatched_at IS NULL;
CREATE INDEX events_by_client ON events (client_id, seq);

-- A client's receivers. Secrets are AES-GCM sealed like settings; during a rotation the previous
-- secret keeps signing until `previous_secret_expires_at`.
CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
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
CREATE INDEX webhook_endpoints_by_client ON webhook_endpoints (client_id, id);

-- One event on its way to one endpoint. `pending` deliveries are due at `next_attempt_at`; a
-- consumer holds one while `lease_until` is in the future, so two never send it at once.
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
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (client_id, endpoint_id, event_seq);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- Every try, for the delivery log: what was answered, how fast, and the answer's first bytes.
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
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (client_id, delivery_id, attempt);

INSERT INTO schema_version (version, name) VALUES (10, 'webhooks');
