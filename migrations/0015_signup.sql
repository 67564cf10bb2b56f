-- Self-serve signup: an agency made by signup starts unverified (it cannot add clients) until its
-- first admin proves the address with a mailed, hashed, single-use token. Agencies made any other
-- way are verified.
ALTER TABLE agencies ADD COLUMN signup_verified INTEGER NOT NULL DEFAULT 1;

CREATE TABLE email_verifications (
  id TEXT PRIMARY KEY,
  agency_id TEXT NOT NULL REFERENCES agencies (id),
  user_id TEXT NOT NULL REFERENCES users (id),
  token_hash TEXT NOT NULL UNIQUE,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX email_verifications_by_agency ON email_verifications (agency_id);

INSERT INTO schema_version (version, name) VALUES (15, 'signup');
