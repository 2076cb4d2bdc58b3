-- Alerts: where an organisation's alerts go, which conditions raise them, the conditions
-- open now (one alert each until they clear), and the deliveries queued for sending.

-- A webhook (an HTTPS URL; its signing secret sealed with the server's SECRET_KEY, bound to
-- the destination's id) or an email address.
CREATE TABLE alert_destinations (
    id               TEXT PRIMARY KEY NOT NULL,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    target           TEXT NOT NULL,
    sealed_secret    BLOB,
    created_at       INTEGER NOT NULL
);
CREATE INDEX alert_destinations_org ON alert_destinations (organisation_id);

-- An organisation's setting of one rule; a rule without a row has its default.
CREATE TABLE alert_rules (
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    rule             TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    threshold        INTEGER NOT NULL,
    PRIMARY KEY (organisation_id, rule)
);

-- The conditions that hold now and were alerted, e.g. 'failure_rate:<integration id>'. The
-- instance that inserts one queues its alert, the one that deletes it the "resolved".
CREATE TABLE alert_conditions (
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    condition_key    TEXT NOT NULL,
    opened_at        INTEGER NOT NULL,
    PRIMARY KEY (organisation_id, condition_key)
);

-- One alert to one destination. An instance sending it holds it until lease_until, so
-- several instances send each once; a failed attempt is retried at next_attempt_at.
CREATE TABLE alert_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    destination_id   TEXT NOT NULL REFERENCES alert_destinations (id) ON DELETE CASCADE,
    -- The alert as JSON: the webhook's body, and what an email says.
    message          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    -- Set when it was sent, or given up after the last attempt; with the last error.
    done_at          INTEGER,
    sent             INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE done_at IS NULL;
CREATE INDEX alert_deliveries_org ON alert_deliveries (organisation_id, id);
