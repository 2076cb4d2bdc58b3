-- Admin sessions (tower-sessions' PostgreSQL store, default schema and table). Created here
-- rather than by the store at start, whose concurrent CREATE TABLE can fail when instances
-- start together; migrations run under sqlx's advisory lock. `IF NOT EXISTS`: databases from
-- before this migration already have them.
CREATE SCHEMA IF NOT EXISTS tower_sessions;
CREATE TABLE IF NOT EXISTS tower_sessions.session (
    id TEXT PRIMARY KEY NOT NULL,
    data BYTEA NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);
