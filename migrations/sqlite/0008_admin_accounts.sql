-- Admin accounts: disabling, the organisation's second-factor policy, sessions that can be
-- listed and ended, and failed logins counted in the database.

-- A disabled admin cannot log in, and their sessions end.
ALTER TABLE admins ADD COLUMN disabled_at INTEGER;

-- Every admin of the organisation must use a second factor.
ALTER TABLE organisations ADD COLUMN require_second_factor INTEGER NOT NULL DEFAULT 0;

-- Whose session each is (from its record), and a handle that names it without being the
-- session id (which is a bearer secret): the admin lists and ends their sessions by handle.
ALTER TABLE tower_sessions ADD COLUMN admin_id TEXT;
ALTER TABLE tower_sessions ADD COLUMN handle TEXT;
CREATE INDEX tower_sessions_admin ON tower_sessions (admin_id);
-- Sessions from before have neither, so nothing could end them by admin (a changed password,
-- a disabled admin): they end here, and their admins log in again once.
DELETE FROM tower_sessions;

-- Failed logins, shared by every instance: per account and address (''), per account
-- (address ''), per address (account ''). Each row is the instant (ms) by which its failures
-- are paid off, one period per failure (the generic cell rate algorithm); rows paid off are
-- pruned.
CREATE TABLE login_failures (
    account   TEXT NOT NULL,
    address   TEXT NOT NULL,
    paid_off  INTEGER NOT NULL,
    PRIMARY KEY (account, address)
);
CREATE INDEX login_failures_paid_off ON login_failures (paid_off);
