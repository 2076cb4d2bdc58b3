-- Admins' second factors: authenticator apps (TOTP) and passkeys, and one-time recovery codes.

CREATE TABLE admin_factors (
    id               TEXT PRIMARY KEY,
    admin_id         TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    -- 'totp' or 'passkey'.
    kind             TEXT NOT NULL,
    -- What the admin calls it ("Phone", "YubiKey").
    name             TEXT NOT NULL,
    -- The factor's secret (a TOTP key, a passkey's credential), sealed with the server's
    -- SECRET_KEY and bound to its admin: a copy of the database alone reveals none.
    secret           BYTEA NOT NULL,
    -- A factor counts once its admin proved it works (a first code, a first signature).
    confirmed        BOOLEAN NOT NULL,
    -- TOTP: the last time step accepted; a code is accepted once (RFC 6238 §5.2).
    last_step        BIGINT,
    created_at       BIGINT NOT NULL,
    last_used_at     BIGINT
);
CREATE INDEX admin_factors_admin ON admin_factors (admin_id);

-- Ten codes per admin, shown once; each logs in once in place of a second factor. Stored as
-- SHA-256 digests (each code holds 80 random bits).
CREATE TABLE admin_recovery_codes (
    admin_id         TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    code_hash        TEXT NOT NULL,
    used_at          BIGINT,
    PRIMARY KEY (admin_id, code_hash)
);
