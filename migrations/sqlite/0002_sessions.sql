-- Admin sessions (tower-sessions' SQLite store, default table name). Created here rather than
-- by the store at start, so that instances starting together create it once, with the rest
-- of the schema. `IF NOT EXISTS`: databases from before this migration already have it.
CREATE TABLE IF NOT EXISTS tower_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    data BLOB NOT NULL,
    expiry_date INTEGER NOT NULL
);
