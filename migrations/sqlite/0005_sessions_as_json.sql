-- Admin sessions are now kept by the store itself (JSON records, expiry in seconds since the
-- epoch) instead of tower-sessions' sqlx store. Sessions in the old layout cannot be read,
-- so they end here: admins log in again once after the upgrade.
DELETE FROM tower_sessions;
