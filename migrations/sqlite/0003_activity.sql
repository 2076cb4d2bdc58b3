-- The sync activity log: one row per authenticated SCIM request, written in batches off the
-- request path and pruned after the retention period (ACTIVITY_RETENTION_DAYS).
CREATE TABLE scim_requests (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    integration_id   TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    at               INTEGER NOT NULL,
    method           TEXT NOT NULL,
    -- Path and query as received, e.g. /scimapi/Users?filter=...
    path             TEXT NOT NULL,
    status           INTEGER NOT NULL,
    -- 'User' or 'Group', and its id, when the request names or creates one.
    resource_type    TEXT,
    resource_id      TEXT,
    duration_us      INTEGER NOT NULL,
    -- For failures: the SCIM error's scimType and detail.
    error            TEXT,
    -- The request body with passwords removed, cut at 8 KiB.
    request_body     TEXT
);
CREATE INDEX scim_requests_org ON scim_requests (organisation_id, id);
CREATE INDEX scim_requests_resource ON scim_requests (organisation_id, resource_id);
-- The dashboard's counts per integration (covering: no table reads), and its latest failure.
CREATE INDEX scim_requests_integration_at ON scim_requests (integration_id, at, status);
CREATE INDEX scim_requests_failures ON scim_requests (organisation_id, id) WHERE status >= 400;
-- Pruning by age.
CREATE INDEX scim_requests_at ON scim_requests (at);

-- The dashboard's active / deactivated users per integration, read from the index alone.
CREATE INDEX scim_users_org_integration_active ON scim_users (organisation_id, integration_id, active);
