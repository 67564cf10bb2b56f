-- Booking: services, staff with weekly hours and time off, and appointments. Times of day are
-- the client's local wall-clock minutes; instants are UTC milliseconds. No staff member is ever
-- double-booked: an appointment is inserted only if no active appointment of the same staff
-- member overlaps its blocked range (the slot plus the service's buffers), decided inside the
-- insert, which D1 runs atomically.

-- The client's IANA time zone: working hours and availability are in it.
ALTER TABLE clients ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

CREATE TABLE services (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  name TEXT NOT NULL,
  duration_min INTEGER NOT NULL CHECK (duration_min BETWEEN 5 AND 720),
  price_minor INTEGER NOT NULL DEFAULT 0 CHECK (price_minor >= 0),
  currency TEXT NOT NULL DEFAULT 'USD',
  buffer_before_min INTEGER NOT NULL DEFAULT 0 CHECK (buffer_before_min BETWEEN 0 AND 240),
  buffer_after_min INTEGER NOT NULL DEFAULT 0 CHECK (buffer_after_min BETWEEN 0 AND 240),
  active INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX services_by_client ON services (client_id, id);

CREATE TABLE staff (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  name TEXT NOT NULL,
  user_id TEXT REFERENCES users (id),
  active INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX staff_by_client ON staff (client_id, id);

CREATE TABLE staff_services (
  client_id TEXT NOT NULL,
  staff_id TEXT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
  service_id TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
  PRIMARY KEY (client_id, staff_id, service_id)
);
CREATE INDEX staff_services_by_service ON staff_services (client_id, service_id);

-- Weekly hours: ISO weekday (Monday 1 … Sunday 7) and local minutes after midnight.
CREATE TABLE staff_hours (
  client_id TEXT NOT NULL,
  staff_id TEXT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
  weekday INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
  start_min INTEGER NOT NULL CHECK (start_min BETWEEN 0 AND 1439),
  end_min INTEGER NOT NULL CHECK (end_min BETWEEN 1 AND 1440 AND end_min > start_min)
);
CREATE INDEX staff_hours_by_staff ON staff_hours (client_id, staff_id, weekday);

-- Time off: whole local days, inclusive.
CREATE TABLE time_off (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  staff_id TEXT NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
  start_date TEXT NOT NULL,
  end_date TEXT NOT NULL CHECK (end_date >= start_date),
  reason TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX time_off_by_staff ON time_off (client_id, staff_id, start_date);

CREATE TABLE appointments (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES clients (id),
  service_id TEXT NOT NULL REFERENCES services (id),
  staff_id TEXT NOT NULL REFERENCES staff (id),
  contact_id TEXT REFERENCES contacts (id) ON DELETE SET NULL,
  starts_at INTEGER NOT NULL,
  ends_at INTEGER NOT NULL CHECK (ends_at > starts_at),
  -- The range the staff member is busy: the slot widened by the service's buffers.
  blocked_from INTEGER NOT NULL,
  blocked_until INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'confirmed', 'completed', 'cancelled')),
  source TEXT NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'widget', 'portal')),
  note TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX appointments_by_staff ON appointments (client_id, staff_id, blocked_from);
CREATE INDEX appointments_by_start ON appointments (client_id, starts_at);
CREATE INDEX appointments_by_contact ON appointments (client_id, contact_id);

INSERT INTO schema_version (version, name) VALUES (7, 'booking');
