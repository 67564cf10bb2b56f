-- Encrypted integration credentials. `ciphertext` is `v1.{key_id}.{base64url(nonce|ct|tag)}`;
-- `key_id` mirrors the id inside it so rotation can find rows under a retired key.

CREATE TABLE client_settings (
  client_id TEXT NOT NULL REFERENCES clients (id),
  provider TEXT NOT NULL,
  field TEXT NOT NULL,
  ciphertext TEXT NOT NULL,
  key_id TEXT NOT NULL,
  updated_by TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (client_id, provider, field)
);
CREATE INDEX client_settings_by_key ON client_settings (key_id);

INSERT INTO schema_version (version, name) VALUES (3, 'settings');
