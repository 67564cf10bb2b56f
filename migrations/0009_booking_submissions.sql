-- A client-generated id per widget booking, so a retried submit books once and answers with the
-- booking it made (NULLs are distinct, so bookings without one never collide).
ALTER TABLE appointments ADD COLUMN submission_id TEXT;
CREATE UNIQUE INDEX appointments_by_submission ON appointments (client_id, submission_id);

INSERT INTO schema_version (version, name) VALUES (9, 'booking_submissions');
