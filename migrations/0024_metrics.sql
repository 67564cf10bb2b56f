-- Per-tenant daily counters for the console and the health view. Each isolate adds up its
-- requests in memory and upserts them here after a response, at most every METRICS_FLUSH_SECS
-- (see src/ops), so no request waits on this table. `day` is the UTC day number (days since
-- 1970-01-01); `last_widget_at` the latest allowed widget request (ms), 0 for none.
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

INSERT INTO schema_version (version, name) VALUES (24, 'metrics');
