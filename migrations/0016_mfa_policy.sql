-- An agency or a client can require MFA of its members. An agency's requirement covers its own
-- members and the members of its clients. A member without MFA is walked through enrolment at the
-- next login: that login's challenge is an enrolment, not a code check.
ALTER TABLE agencies ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mfa_challenges ADD COLUMN purpose TEXT NOT NULL DEFAULT 'verify';

INSERT INTO schema_version (version, name) VALUES (16, 'mfa_policy');
