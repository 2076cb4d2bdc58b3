-- The change history of users and groups: what each SCIM write changed, attribute by
-- attribute (never a password: it is not stored), with the integration, request and time.
-- A membership change is one row on the group naming the member, which the member's
-- history reads too. Kept as long as the activity log (ACTIVITY_RETENTION_DAYS), and erased
-- with a user or group deleted under 'erase'.
CREATE TABLE resource_changes (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    at               INTEGER NOT NULL,
    integration_id   TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    -- The SCIM request's X-Request-Id, to find it in the activity log and server logs.
    request_id       TEXT,
    -- 'User' or 'Group', its id, and its name (displayName, else userName) after the write.
    resource_type    TEXT NOT NULL,
    resource_id      TEXT NOT NULL,
    resource_name    TEXT NOT NULL,
    -- 'created', 'changed', 'deleted', 'member_added' or 'member_removed'.
    action           TEXT NOT NULL,
    -- For 'changed': the attribute's path, and its values as text (NULL: none).
    path             TEXT,
    old_value        TEXT,
    new_value        TEXT,
    -- For a membership change: the user, and their name then.
    member_id        TEXT,
    member_name      TEXT
);
CREATE INDEX resource_changes_resource ON resource_changes (organisation_id, resource_id, seq);
CREATE INDEX resource_changes_member ON resource_changes (organisation_id, member_id, seq)
    WHERE member_id IS NOT NULL;
