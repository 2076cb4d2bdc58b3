-- What an audit event was about, beyond its action: e.g. the email of an admin added.
ALTER TABLE audit_events ADD COLUMN detail TEXT;
