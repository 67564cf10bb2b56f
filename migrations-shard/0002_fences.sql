-- The tenants this shard's scheduled scans leave alone while their agency moves between shards
-- (control-plane migration 0026; tenants::moves).
CREATE TABLE fenced_tenants (
  tenant_id TEXT PRIMARY KEY,
  move_id TEXT NOT NULL,
  since INTEGER NOT NULL
);
