-- Password resets and session versions. A user's `token_version` is stamped on every access token
-- (`ver`) and compared on every request: a reset or a password change bumps it, so every token
-- issued before stops working at once. Reset tokens are stored only as their SHA-256.
ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE password_resets (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id),
  token_hash TEXT NOT NULL UNIQUE,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX password_resets_by_user ON password_resets (user_id, used_at, expires_at);

INSERT INTO schema_version (version, name) VALUES (12, 'password_resets');
