-- Every table holding customer data carries the organisation it belongs to.
-- Times are milliseconds since the Unix epoch (INTEGER), the same on every backend.

CREATE TABLE organisations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX organisations_name ON organisations (name);

CREATE TABLE admins (
    id               TEXT PRIMARY KEY NOT NULL,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    email            TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
-- Emails are stored lower-cased; one login identity per address across the service.
CREATE UNIQUE INDEX admins_email ON admins (email);
CREATE INDEX admins_organisation ON admins (organisation_id);

CREATE TABLE directory_integrations (
    id                TEXT PRIMARY KEY NOT NULL,
    organisation_id   TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    kind              TEXT NOT NULL,
    -- SHA-256 of the provisioning token, hex; NULL until a token is created.
    token_hash        TEXT,
    token_created_at  INTEGER,
    last_sync_at      INTEGER,
    -- What DELETE /Users/{id} does: 'deactivate' (active=false, the user stays) or 'remove'.
    delete_mode       TEXT NOT NULL DEFAULT 'deactivate',
    created_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX directory_integrations_org_kind ON directory_integrations (organisation_id, kind);
CREATE UNIQUE INDEX directory_integrations_token ON directory_integrations (token_hash);

CREATE TABLE audit_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    -- The admin who acted, or NULL for the operator CLI.
    admin_id         TEXT REFERENCES admins (id) ON DELETE SET NULL,
    actor            TEXT NOT NULL,
    action           TEXT NOT NULL,
    integration_id   TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    at               INTEGER NOT NULL
);
CREATE INDEX audit_events_org_at ON audit_events (organisation_id, at);

CREATE TABLE scim_users (
    id               TEXT PRIMARY KEY NOT NULL,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    integration_id   TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    user_name        TEXT NOT NULL,
    -- userName folded for the case-insensitive uniqueness SCIM requires.
    user_name_key    TEXT NOT NULL,
    display_name     TEXT,
    -- displayName folded for case-insensitive filters.
    display_name_key TEXT,
    active           INTEGER NOT NULL,
    -- The stored SCIM attributes (without id and meta), as JSON.
    attributes       TEXT NOT NULL,
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX scim_users_org_user_name ON scim_users (organisation_id, user_name_key);
CREATE INDEX scim_users_org_display_name ON scim_users (organisation_id, display_name_key);
CREATE INDEX scim_users_org_created ON scim_users (organisation_id, created_at);

-- Filterable values of a user beyond the columns above: single-valued strings by path
-- ("title", "name.givenName", "urn:...:User:department") and each element of a multi-valued
-- attribute ("emails", element 0, 1, ...). Keys are case-folded: these attributes compare
-- case-insensitively.
CREATE TABLE scim_user_values (
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    attribute        TEXT NOT NULL,
    element          INTEGER NOT NULL,
    value_key        TEXT,
    type_key         TEXT,
    display_key      TEXT,
    is_primary       INTEGER NOT NULL
);
CREATE INDEX scim_user_values_lookup ON scim_user_values (organisation_id, attribute, value_key);
CREATE INDEX scim_user_values_user ON scim_user_values (user_id);

CREATE TABLE scim_groups (
    id               TEXT PRIMARY KEY NOT NULL,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    integration_id   TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    display_name     TEXT NOT NULL,
    display_name_key TEXT NOT NULL,
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX scim_groups_org_created ON scim_groups (organisation_id, created_at);
CREATE INDEX scim_groups_org_display_name ON scim_groups (organisation_id, display_name_key);

-- Membership as rows: changing one member of a large group touches one row.
CREATE TABLE scim_group_members (
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    group_id         TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);

-- externalId is issued by each provisioning client and scoped to it (RFC 7643 §3.1): every
-- integration keeps its own value for a resource, and sees and filters by only that one.
CREATE TABLE scim_user_external_ids (
    resource_id     TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    integration_id  TEXT NOT NULL REFERENCES directory_integrations (id) ON DELETE CASCADE,
    external_id     TEXT NOT NULL,
    PRIMARY KEY (resource_id, integration_id)
);
CREATE INDEX scim_user_external_ids_lookup ON scim_user_external_ids (integration_id, external_id);

CREATE TABLE scim_group_external_ids (
    resource_id     TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    integration_id  TEXT NOT NULL REFERENCES directory_integrations (id) ON DELETE CASCADE,
    external_id     TEXT NOT NULL,
    PRIMARY KEY (resource_id, integration_id)
);
CREATE INDEX scim_group_external_ids_lookup ON scim_group_external_ids (integration_id, external_id);

-- How many users and groups each organisation has, kept by triggers in the transaction that
-- changes them, so an unfiltered list's totalResults costs one row instead of a count.
CREATE TABLE scim_counts (
    organisation_id  TEXT PRIMARY KEY NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    users            INTEGER NOT NULL DEFAULT 0,
    groups           INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER scim_users_counted AFTER INSERT ON scim_users BEGIN
    INSERT INTO scim_counts (organisation_id, users) VALUES (NEW.organisation_id, 1)
        ON CONFLICT (organisation_id) DO UPDATE SET users = users + 1;
END;
CREATE TRIGGER scim_users_uncounted AFTER DELETE ON scim_users BEGIN
    UPDATE scim_counts SET users = users - 1 WHERE organisation_id = OLD.organisation_id;
END;
CREATE TRIGGER scim_groups_counted AFTER INSERT ON scim_groups BEGIN
    INSERT INTO scim_counts (organisation_id, groups) VALUES (NEW.organisation_id, 1)
        ON CONFLICT (organisation_id) DO UPDATE SET groups = groups + 1;
END;
CREATE TRIGGER scim_groups_uncounted AFTER DELETE ON scim_groups BEGIN
    UPDATE scim_counts SET groups = groups - 1 WHERE organisation_id = OLD.organisation_id;
END;
