-- The PostgreSQL schema; the same tables as migrations/sqlite, in PostgreSQL's types.
-- Times are milliseconds since the Unix epoch (BIGINT), as on SQLite.

CREATE TABLE organisations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX organisations_name ON organisations (name);

CREATE TABLE admins (
    id               TEXT PRIMARY KEY,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    email            TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX admins_email ON admins (email);
CREATE INDEX admins_organisation ON admins (organisation_id);

CREATE TABLE directory_integrations (
    id                TEXT PRIMARY KEY,
    organisation_id   TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    kind              TEXT NOT NULL,
    token_hash        TEXT,
    token_created_at  BIGINT,
    last_sync_at      BIGINT,
    delete_mode       TEXT NOT NULL DEFAULT 'deactivate',
    created_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX directory_integrations_org_kind ON directory_integrations (organisation_id, kind);
CREATE UNIQUE INDEX directory_integrations_token ON directory_integrations (token_hash);

CREATE TABLE audit_events (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    admin_id         TEXT REFERENCES admins (id) ON DELETE SET NULL,
    actor            TEXT NOT NULL,
    action           TEXT NOT NULL,
    integration_id   TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    at               BIGINT NOT NULL
);
CREATE INDEX audit_events_org_at ON audit_events (organisation_id, at);

CREATE TABLE scim_users (
    id               TEXT PRIMARY KEY,
    -- Creation order within a millisecond (SQLite uses its rowid).
    seq              BIGINT GENERATED ALWAYS AS IDENTITY,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    integration_id   TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    user_name        TEXT NOT NULL,
    user_name_key    TEXT NOT NULL,
    display_name     TEXT,
    display_name_key TEXT,
    active           BOOLEAN NOT NULL,
    attributes       TEXT NOT NULL,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX scim_users_org_user_name ON scim_users (organisation_id, user_name_key);
CREATE INDEX scim_users_org_display_name ON scim_users (organisation_id, display_name_key);
CREATE INDEX scim_users_org_created ON scim_users (organisation_id, created_at, seq);

CREATE TABLE scim_user_values (
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    attribute        TEXT NOT NULL,
    element          BIGINT NOT NULL,
    value_key        TEXT,
    type_key         TEXT,
    display_key      TEXT,
    is_primary       BOOLEAN NOT NULL
);
CREATE INDEX scim_user_values_lookup ON scim_user_values (organisation_id, attribute, value_key);
CREATE INDEX scim_user_values_user ON scim_user_values (user_id);

CREATE TABLE scim_groups (
    id               TEXT PRIMARY KEY,
    seq              BIGINT GENERATED ALWAYS AS IDENTITY,
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    integration_id   TEXT REFERENCES directory_integrations (id) ON DELETE SET NULL,
    display_name     TEXT NOT NULL,
    display_name_key TEXT NOT NULL,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX scim_groups_org_created ON scim_groups (organisation_id, created_at, seq);
CREATE INDEX scim_groups_org_display_name ON scim_groups (organisation_id, display_name_key);

CREATE TABLE scim_group_members (
    organisation_id  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    group_id         TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);

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

CREATE TABLE scim_counts (
    organisation_id  TEXT PRIMARY KEY REFERENCES organisations (id) ON DELETE CASCADE,
    users            BIGINT NOT NULL DEFAULT 0,
    groups           BIGINT NOT NULL DEFAULT 0
);

CREATE FUNCTION scim_count_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO scim_counts (organisation_id, users) VALUES (NEW.organisation_id, 1)
            ON CONFLICT (organisation_id) DO UPDATE SET users = scim_counts.users + 1;
    ELSE
        UPDATE scim_counts SET users = users - 1 WHERE organisation_id = OLD.organisation_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER scim_users_counted AFTER INSERT OR DELETE ON scim_users
    FOR EACH ROW EXECUTE FUNCTION scim_count_users();

CREATE FUNCTION scim_count_groups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO scim_counts (organisation_id, groups) VALUES (NEW.organisation_id, 1)
            ON CONFLICT (organisation_id) DO UPDATE SET groups = scim_counts.groups + 1;
    ELSE
        UPDATE scim_counts SET groups = groups - 1 WHERE organisation_id = OLD.organisation_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER scim_groups_counted AFTER INSERT OR DELETE ON scim_groups
    FOR EACH ROW EXECUTE FUNCTION scim_count_groups();
