-- Whether a client's widget offers booking, kept on the client's directory row: the gate reads
-- only the control plane, while services and staff live on the client's data shard. The staff and
-- service writes keep it (booking::offered_changed); here it starts from the rows as they are.
ALTER TABLE clients ADD COLUMN bookable INTEGER NOT NULL DEFAULT 0;

UPDATE clients SET bookable = EXISTS (SELECT 1 FROM staff_services ss JOIN staff st ON st.id = ss.staff_id
  JOIN services sv ON sv.id = ss.service_id WHERE ss.client_id = clients.id AND st.active = 1 AND sv.active = 1);

-- Writes a control-plane change owes a client's data shard (a domain's event, a template's
-- pipelines and services), held in the batch of the change and applied right after it, or by the
-- scheduled run if the request stopped short (access::relay). `writes` is JSON: a list of
-- [statement name, parameters]; the names are a fixed list, never SQL.
CREATE TABLE shard_writes (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  writes TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX shard_writes_by_tenant ON shard_writes (tenant_id, id);
CREATE INDEX shard_writes_by_age ON shard_writes (created_at);

-- Which data shard holds a tenant's rows (platform::router): a client's, and an agency's own (its
-- files, audit log and counters) and, by default, its new clients'.
ALTER TABLE agencies ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
CREATE INDEX agencies_by_shard ON agencies (shard);

INSERT INTO schema_version (version, name) VALUES (25, 'planes');
