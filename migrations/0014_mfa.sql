-- MFA with TOTP: a sealed secret per user (pending while enrolling), the last accepted step (so
-- no code works twice), one-time recovery codes stored hashed, and the second step of a login.
ALTER TABLE users ADD COLUMN mfa_secret_sealed TEXT;
ALTER TABLE users ADD COLUMN mfa_pending_sealed TEXT;
ALTER TABLE users ADD COLUMN mfa_enabled_at INTEGER;
ALTER TABLE users ADD COLUMN mfa_last_step INTEGER NOT NULL DEFAULT 0;

CREATE TABLE mfa_recovery_codes (
  user_id TEXT NOT NULL REFERENCES users (id),
  code_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  used_at INTEGER,
  PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE mfa_challenges (
  id TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  user_id TEXT NOT NULL REFERENCES users (id),
  tenant TEXT,
  site TEXT,
  expires_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  used_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX mfa_challenges_by_user ON mfa_challenges (user_id, created_at);

INSERT INTO schema_version (version, name) VALUES (14, 'mfa');
