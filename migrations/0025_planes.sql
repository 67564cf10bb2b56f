-- Whether a client's widget offers booking, kept on the client's directory row: the gate reads
-- only the control plane, while services and staff live on the client's data shard. The staff and
-- service writes keep it (booking::offered_changed); here it starts from the rows as they are.
ALTER TABLE clients ADD COLUMN bookable INTEGER NOT NULL DEFAULT 0;

UPDATE clients SET bookable = EXISTS (SELECT 1 FROM staff_services ss JOIN staff st ON st.id = ss.staff_id
  JOIN services sv ON sv.id = ss.service_id WHERE ss.client_id = clients.id AND st.active = 1 AND sv.active = 1);

-- A domain's events wait on its directory row until they are written to the client's shard, where
-- the webhook outbox lives: the change and its events commit together in the control plane, and
-- the copy to the shard is idempotent by event id (domains::flush_events).
ALTER TABLE domains ADD COLUMN pending_events TEXT;

INSERT INTO schema_version (version, name) VALUES (25, 'planes');
