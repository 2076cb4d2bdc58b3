-- A DELETE makes a user or group gone for SCIM (RFC 7644 §3.6): its row leaves scim_users or
-- scim_groups (with its values, memberships and externalIds), so no read, filter, total or
-- membership can find it again and its userName is free for a new user. What the console
-- keeps of it is the deleting integration's on_delete setting:
-- - 'keep' (the default): a read-only record here, with its attributes and its groups (or
--   members) at deletion; the activity log keeps its requests.
-- - 'erase': no record, and the activity log keeps only the request line of its requests
--   (their bodies and error details are cleared).
CREATE TABLE deleted_users (
    -- The id it had over SCIM. Ids are random UUIDs, never given again.
    id               TEXT PRIMARY KEY NOT NULL,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    -- The integration that created it, and the one that deleted it.
    integration_id   TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    deleted_by       TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    user_name        TEXT NOT NULL,
    user_name_key    TEXT NOT NULL,
    display_name     TEXT,
    display_name_key TEXT,
    active           INTEGER NOT NULL,
    attributes       TEXT NOT NULL,
    -- The externalId the deleting integration kept for it.
    external_id      TEXT,
    -- Its groups when it was deleted: JSON [[group id, displayName], ...].
    groups           TEXT NOT NULL,
    -- What the console's search looks in: userName, displayName, emails and name parts,
    -- case-folded, one a line.
    search_key       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER NOT NULL
);
CREATE INDEX deleted_users_org_deleted ON deleted_users (organisation_id, deleted_at);
-- Links a record to a user created later with the same userName, and back.
CREATE INDEX deleted_users_org_user_name ON deleted_users (organisation_id, user_name_key);
CREATE INDEX deleted_users_org_display_name ON deleted_users (organisation_id, display_name_key);
-- The dashboard's count per deleting integration, from the index alone.
CREATE INDEX deleted_users_org_deleted_by ON deleted_users (organisation_id, deleted_by);

CREATE TABLE deleted_groups (
    id               TEXT PRIMARY KEY NOT NULL,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    integration_id   TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    deleted_by       TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    display_name     TEXT NOT NULL,
    display_name_key TEXT NOT NULL,
    external_id      TEXT,
    -- Its members when it was deleted: JSON [[user id, userName, displayName, active (0 or 1)], ...].
    members          TEXT NOT NULL,
    member_count     INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER NOT NULL
);
CREATE INDEX deleted_groups_org_deleted ON deleted_groups (organisation_id, deleted_at);
CREATE INDEX deleted_groups_org_display_name ON deleted_groups (organisation_id, display_name_key);

-- Users and groups deleted under 'erase', so that a request on one written to the activity
-- log after its DELETE (it raced with it, or another instance recorded it) is stored
-- without body or error detail too. Pruned with the activity log.
CREATE TABLE erased_resources (
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    resource_id      TEXT NOT NULL,
    at               INTEGER NOT NULL,
    PRIMARY KEY (organisation_id, resource_id)
);
CREATE INDEX erased_resources_at ON erased_resources (at);

-- The setting, renamed for what it now decides: 'deactivate' (the old default) becomes
-- 'keep', 'remove' (nothing kept) becomes 'erase'.
ALTER TABLE directory_integrations ADD COLUMN on_delete TEXT NOT NULL DEFAULT 'keep';
UPDATE directory_integrations SET on_delete = 'erase' WHERE delete_mode = 'remove';
ALTER TABLE directory_integrations DROP COLUMN delete_mode;

-- Users deleted before this change, while the setting was 'deactivate', are still in
-- scim_users with active = false. One of them counts as deleted when the newest request
-- that changed it successfully, in the activity log, is a DELETE: the identity provider
-- deleted it and did not take it back (a later successful PUT or PATCH means it still
-- manages the user, who then stays, deactivated). Its record takes that request's time and
-- integration, and its groups and externalId as they are now. A deletion older than the
-- activity log's retention cannot be told from a deactivation: such users stay too.
INSERT INTO deleted_users (id, organisation_id, integration_id, deleted_by, user_name,
    user_name_key, display_name, display_name_key, active, attributes, external_id, groups, search_key,
    created_at, updated_at, deleted_at)
SELECT u.id, u.organisation_id, u.integration_id, r.integration_id, u.user_name,
    u.user_name_key, u.display_name, u.display_name_key, u.active, u.attributes,
    (SELECT e.external_id FROM scim_user_external_ids e
        WHERE e.resource_id = u.id AND e.integration_id = r.integration_id),
    (SELECT json_group_array(json_array(g.id, g.display_name) ORDER BY g.display_name_key, g.id)
        FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id
        WHERE m.user_id = u.id),
    u.user_name_key || COALESCE(char(10) || u.display_name_key, '')
        || COALESCE(char(10) || (SELECT group_concat(v.value_key, char(10))
            FROM scim_user_values v
            WHERE v.user_id = u.id AND v.value_key IS NOT NULL
                AND v.attribute IN ('emails', 'name.givenName', 'name.familyName')), ''),
    u.created_at, u.updated_at, r.at
FROM scim_users u
JOIN scim_requests r ON r.id = (
    SELECT MAX(x.id) FROM scim_requests x
    WHERE x.organisation_id = u.organisation_id AND x.resource_id = u.id
        AND x.method <> 'GET' AND x.status BETWEEN 200 AND 299)
WHERE u.active = 0 AND r.method = 'DELETE';

DELETE FROM scim_users WHERE id IN (SELECT id FROM deleted_users);
