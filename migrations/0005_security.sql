-- Security hardening (issue 10): revocable signed links, widget idempotency and daily caps,
-- domain claims that block others only once verified.

-- A per-file nonce inside every signed link's MAC: rotating it revokes the file's links.
ALTER TABLE files ADD COLUMN link_nonce TEXT NOT NULL DEFAULT '';

-- A client-generated id per widget submission, so a retried submit creates one lead.
ALTER TABLE contacts ADD COLUMN submission_id TEXT;
CREATE UNIQUE INDEX contacts_by_submission ON contacts (client_id, submission_id);

-- Per-tenant counters by period (for widget submissions, the UTC day number). Incremented by
-- trigger inside the statement that inserts the counted row, so a cap checked in that same
-- statement holds under any concurrency.
CREATE TABLE usage_counters (
  tenant_id TEXT NOT NULL,
  metric TEXT NOT NULL,
  period INTEGER NOT NULL,
  count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, metric, period)
);

CREATE TRIGGER contacts_count_widget_submissions AFTER INSERT ON contacts WHEN NEW.source = 'widget'
BEGIN
  INSERT INTO usage_counters (tenant_id, metric, period, count)
  VALUES (NEW.client_id, 'widget_submissions', CAST(NEW.created_at / 86400000 AS INTEGER), 1)
  ON CONFLICT (tenant_id, metric, period) DO UPDATE SET count = count + 1;
END;

-- Domains: a hostname was globally UNIQUE, so an unproved claim blocked everyone else forever.
-- Now only a verified claim is unique platform-wide; a client holds each name at most once.
CREATE TABLE domains_new (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  hostname TEXT NOT NULL,
  site TEXT NOT NULL,
  scheme TEXT NOT NULL DEFAULT 'https' CHECK (scheme IN ('http', 'https')),
  port INTEGER CHECK (port IS NULL OR (port BETWEEN 1 AND 65535)),
  purpose TEXT NOT NULL CHECK (purpose IN ('widget', 'portal', 'both')),
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified', 'failed', 'lapsed')),
  status_reason TEXT,
  verified_by TEXT CHECK (verified_by IN ('dns', 'admin')),
  verification_token TEXT NOT NULL,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  verified_at INTEGER,
  last_checked_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
INSERT INTO domains_new SELECT id, client_id, hostname, site, scheme, port, purpose, status, status_reason,
  verified_by, verification_token, consecutive_failures, verified_at, last_checked_at, created_at, updated_at
  FROM domains;
DROP TABLE domains;
ALTER TABLE domains_new RENAME TO domains;
CREATE INDEX domains_by_client ON domains (client_id, status);
CREATE UNIQUE INDEX domains_client_hostname ON domains (client_id, hostname);
CREATE UNIQUE INDEX domains_verified_hostname ON domains (hostname) WHERE status = 'verified';
CREATE INDEX domains_verified ON domains (status, last_checked_at);
CREATE INDEX domains_by_status_age ON domains (status, created_at);
CREATE INDEX domains_by_site ON domains (site, status);

-- Adding a person is an invitation: the answer never reveals whether the email has an account,
-- and nobody creates an account (with a password they know) for someone else's address.
-- Only the token's SHA-256 is stored; the token travels in the invitation mail.
CREATE TABLE invitations (
  id TEXT PRIMARY KEY,
  -- The client or agency the membership is in.
  tenant_id TEXT NOT NULL,
  email TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('agency_admin', 'agency_user', 'client_admin', 'client_user', 'client_viewer')),
  permissions TEXT,
  token_hash TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'revoked')),
  invited_by TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  accepted_at INTEGER,
  accepted_by TEXT,
  -- Set by the one acceptance that wins; the user and membership inserts check it.
  accept_nonce TEXT
);
CREATE INDEX invitations_by_tenant ON invitations (tenant_id, status);

-- Outgoing mail, written in the same batch as what it announces. In development this table is
-- the mailbox; a delivery job hands rows to the mail API where one is configured.
CREATE TABLE outbox (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  to_email TEXT NOT NULL,
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  sent_at INTEGER
);
CREATE INDEX outbox_by_tenant ON outbox (tenant_id, created_at);

INSERT INTO schema_version (version, name) VALUES (5, 'security');
