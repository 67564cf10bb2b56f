-- Plans and quotas: a client's own limits override its plan's (data/plans.json), and each
-- crossing of 80% or 100% of a limit is recorded.
ALTER TABLE clients ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';

CREATE TABLE usage_events (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  metric TEXT NOT NULL,
  threshold INTEGER NOT NULL CHECK (threshold IN (80, 100)),
  used INTEGER NOT NULL,
  quota INTEGER NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX usage_events_by_client ON usage_events (client_id, at);

INSERT INTO schema_version (version, name) VALUES (18, 'plans');
