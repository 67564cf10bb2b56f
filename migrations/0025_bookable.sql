-- Whether a client's widget offers booking, kept on the client's directory row: the gate reads
-- only the control plane, while services and staff live on the client's data shard. The staff and
-- service writes keep it (booking::offered_changed); here it starts from the rows as they are.
ALTER TABLE clients ADD COLUMN bookable INTEGER NOT NULL DEFAULT 0;

UPDATE clients SET bookable = EXISTS (SELECT 1 FROM staff_services ss JOIN staff st ON st.id = ss.staff_id
  JOIN services sv ON sv.id = ss.service_id WHERE ss.client_id = clients.id AND st.active = 1 AND sv.active = 1);

INSERT INTO schema_version (version, name) VALUES (25, 'bookable');
