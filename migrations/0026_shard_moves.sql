-- Moving an agency's rows from one data shard to another (tenants::moves): one row per move, its
-- phase and where each phase has got to, so any step can stop and the next one carries on. At
-- most one move of an agency is under way at a time.
CREATE TABLE shard_moves (
  id TEXT PRIMARY KEY,
  agency_id TEXT NOT NULL REFERENCES agencies (id),
  from_shard INTEGER NOT NULL CHECK (from_shard >= 0),
  to_shard INTEGER NOT NULL CHECK (to_shard >= 0 AND to_shard <> from_shard),
  phase TEXT NOT NULL CHECK (phase IN ('settling', 'clearing', 'copying', 'verifying', 'flipped', 'cleaning', 'done',
    'cancelling', 'cancelled', 'failed')),
  -- The table the phase is at (its place in the move's table order), and the last rowid read
  -- there on the old shard and, while verifying, on the new one.
  table_at INTEGER NOT NULL DEFAULT 0,
  cursor INTEGER NOT NULL DEFAULT 0,
  target_cursor INTEGER NOT NULL DEFAULT 0,
  -- While verifying, the table's rows and checksum read so far on each side; then each table's.
  tally TEXT NOT NULL DEFAULT '{}',
  verified TEXT NOT NULL DEFAULT '{}',
  copied INTEGER NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0,
  -- Copies started: a verification that fails starts the copy again, up to a limit.
  rounds INTEGER NOT NULL DEFAULT 1,
  error TEXT,
  -- A phase that waits for cached directory rows to expire does not go on before this.
  ready_at INTEGER NOT NULL,
  lease_until INTEGER,
  requested_by TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE UNIQUE INDEX shard_moves_one_per_agency ON shard_moves (agency_id)
  WHERE phase NOT IN ('done', 'cancelled', 'failed');
CREATE INDEX shard_moves_by_agency ON shard_moves (agency_id, created_at);
CREATE INDEX shard_moves_under_way ON shard_moves (updated_at) WHERE phase NOT IN ('done', 'cancelled', 'failed');

-- The tenants a data shard's scheduled scans leave alone while their agency moves: the copy and
-- the checksums must not race a scan's write, and rows copied to the new shard must not be acted
-- on twice. Written on both shards by the move alone.
CREATE TABLE fenced_tenants (
  tenant_id TEXT PRIMARY KEY,
  move_id TEXT NOT NULL,
  since INTEGER NOT NULL
);

INSERT INTO schema_version (version, name) VALUES (26, 'shard_moves');
