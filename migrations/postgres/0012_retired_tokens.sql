-- Provisioning tokens replaced by a reset, kept as digests (never the token) for a while, so
-- that a request still presenting one is attributed to its integration: refused as before,
-- but counted, and the console tells the admin that the IdP still sends the old token.
-- Times are milliseconds since the Unix epoch.
CREATE TABLE retired_tokens (
    -- SHA-256 of the token, hex, as directory_integrations.token_hash held it.
    token_hash       TEXT PRIMARY KEY NOT NULL,
    integration_id   TEXT NOT NULL REFERENCES directory_integrations (id) ON DELETE CASCADE,
    retired_at       BIGINT NOT NULL,
    -- Requests that presented it after it was retired, and the newest of them.
    uses             BIGINT NOT NULL DEFAULT 0,
    last_used_at     BIGINT,
    last_address     TEXT,
    last_user_agent  TEXT
);
CREATE INDEX retired_tokens_integration ON retired_tokens (integration_id, retired_at);
CREATE INDEX retired_tokens_retired_at ON retired_tokens (retired_at);
