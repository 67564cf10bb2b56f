-- The CRM beyond contacts: tags, notes, pipelines with ordered stages, deals and their stage
-- history. Every table is client-owned and leads an index with client_id; references across
-- tables are checked inside the writing statement to stay within one client.

-- Tags: names unique per client, case-insensitively.
CREATE TABLE tags (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  name TEXT NOT NULL,
  color TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX tags_by_name ON tags (client_id, name COLLATE NOCASE);

CREATE TABLE contact_tags (
  client_id TEXT NOT NULL,
  contact_id TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
  tag_id TEXT NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (client_id, contact_id, tag_id)
);
CREATE INDEX contact_tags_by_tag ON contact_tags (client_id, tag_id, contact_id);

-- Contacts are searched by name or email prefix within a client.
CREATE INDEX contacts_by_name ON contacts (client_id, name COLLATE NOCASE);
CREATE INDEX contacts_by_email ON contacts (client_id, email COLLATE NOCASE);

-- Notes on contacts and deals.
CREATE TABLE notes (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  subject_type TEXT NOT NULL CHECK (subject_type IN ('contact', 'deal')),
  subject_id TEXT NOT NULL,
  body TEXT NOT NULL,
  author_user_id TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX notes_by_subject ON notes (client_id, subject_type, subject_id, id);

CREATE TABLE pipelines (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX pipelines_by_client ON pipelines (client_id, id);

-- Stages are ordered by position within their pipeline. Positions are rewritten together when
-- stages are reordered, so they are not declared unique (SQLite checks uniqueness row by row).
CREATE TABLE pipeline_stages (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  pipeline_id TEXT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  position INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX stages_by_pipeline ON pipeline_stages (client_id, pipeline_id, position);

CREATE TABLE deals (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  pipeline_id TEXT NOT NULL REFERENCES pipelines (id),
  stage_id TEXT NOT NULL REFERENCES pipeline_stages (id),
  title TEXT NOT NULL,
  -- Minor units (cents) of `currency`, an ISO 4217 code.
  value_minor INTEGER NOT NULL DEFAULT 0 CHECK (value_minor >= 0),
  currency TEXT NOT NULL,
  contact_id TEXT REFERENCES contacts (id) ON DELETE SET NULL,
  owner_user_id TEXT REFERENCES users (id),
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
  lost_reason TEXT,
  expected_close_date TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  closed_at INTEGER
);
CREATE INDEX deals_by_client ON deals (client_id, id);
CREATE INDEX deals_by_stage ON deals (client_id, stage_id, id);
CREATE INDEX deals_by_pipeline ON deals (client_id, pipeline_id, status, stage_id);
CREATE INDEX deals_by_contact ON deals (client_id, contact_id);

-- Every move between stages, written in the same batch as the move and its audit row.
CREATE TABLE deal_stage_history (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  deal_id TEXT NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
  from_stage_id TEXT,
  to_stage_id TEXT NOT NULL,
  moved_by TEXT,
  moved_at INTEGER NOT NULL
);
CREATE INDEX deal_history_by_deal ON deal_stage_history (client_id, deal_id, moved_at);

INSERT INTO schema_version (version, name) VALUES (6, 'crm');
