//! What users and groups have in common in storage: a row read with the externalId of the
//! integration reading it, the related resources loaded with it when asked (a user's
//! groups, a group's members), lists with a count of all matches, and guarded deletion.

use std::collections::HashMap;

use super::activity::erase_history;
use super::db::{stmt, Query, Row, Tx};
use super::filter_sql::{ListSql, Table};
use super::history::{self, Origin, Subject};
use super::{placeholders, Backend, GroupBody, ListQuery, Store, UserBody, CHUNK};
use crate::error::{Error, Result};
use crate::history::Action;
use crate::integrations::DeleteMode;

/// A stored user or group: what every resource's row has, `body` (the columns of its own:
/// a user's document, a group's displayName), and the externalId of the integration that
/// read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRow<B> {
    pub id: String,
    pub body: B,
    pub external_id: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a user's or group's row holds of its own: its table, the column it is read from,
/// what the console names the resource by, and what its deletion writes. Public in name
/// only (this module is private), so the SCIM resources can name their rows' bodies; no
/// other crate can implement or call it.
pub trait RowBody: Sized + Send + 'static {
    const TABLE: Table;
    const COLUMN: &'static str;
    fn from_column(value: String) -> Self;
    /// The name the console shows it by.
    fn name(&self) -> Result<String>;
    /// The statement that writes the console's record of the resource about to be deleted,
    /// copying from its row and its related resources' what the record keeps.
    fn record(
        backend: Backend,
        row: ResourceRow<Self>,
        deletion: &Deletion,
    ) -> Result<Query<'static>>;
    /// The statement that records, on the resources related to this one, that it leaves
    /// them, run before its row goes; `None` when nothing records it.
    fn leaving(backend: Backend, deletion: &Deletion) -> Option<Query<'static>>;

    /// The columns a read of the row takes, before the externalId column the reads add.
    fn columns() -> String {
        format!("id, {}, version, created_at, updated_at", Self::COLUMN)
    }

    /// The row that a read of [`RowBody::columns`] and the externalId returned.
    fn row(mut r: Row) -> ResourceRow<Self> {
        ResourceRow {
            id: r.take(0),
            body: Self::from_column(r.take(1)),
            version: r.take(2),
            created_at: r.take(3),
            updated_at: r.take(4),
            external_id: r.take(5),
        }
    }
}

/// The user or group a write changes or deletes: which one, by which integration (whose
/// externalId the write reads and sets), and on what condition.
#[derive(Debug, Clone)]
pub struct Target {
    pub organisation_id: String,
    pub integration_id: String,
    pub id: String,
    /// `If-Match` versions; `None` when absent or `*`.
    pub if_match: Option<Vec<i64>>,
}

/// A DELETE of a user or group: which one, and what the console keeps of it.
#[derive(Debug, Clone)]
pub struct Deletion {
    pub target: Target,
    pub mode: DeleteMode,
    pub at: i64,
}

impl Deletion {
    /// `sql`, which writes a deleted record, with what every record takes bound: `$1` the
    /// organisation, `$2` the id, `$3` the deleting integration, `$4` the externalId it kept,
    /// `$5` the time of deletion.
    pub(super) fn record(&self, sql: String, external_id: Option<String>) -> Query<'static> {
        stmt(sql)
            .bind(self.target.organisation_id.clone())
            .bind(self.target.id.clone())
            .bind(self.target.integration_id.clone())
            .bind(external_id)
            .bind(self.at)
    }
}

/// A user or group as one job read or wrote it: its row, and the related resources (a
/// user's groups, a group's members: id and display text) when they were asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<R> {
    pub row: R,
    pub related: Option<Vec<(String, String)>>,
}

/// One page of users or groups and the number of all matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<R> {
    pub total: u64,
    pub page: Vec<Stored<R>>,
}

/// The resources related to each of `ids` of `table`, in the order of `ids`: a user's
/// groups (id, displayName) by displayName, a group's members (id, displayName or else
/// userName) by userName. One statement per chunk of ids.
pub(super) async fn related(
    tx: &mut Tx,
    table: Table,
    organisation_id: &str,
    ids: &[String],
) -> Result<Vec<Vec<(String, String)>>> {
    let (key, other, shown, order) = match table {
        Table::Users => (
            "m.user_id",
            "scim_groups o ON o.id = m.group_id",
            "o.display_name",
            "o.display_name_key, o.id",
        ),
        Table::Groups => (
            "m.group_id",
            "scim_users o ON o.id = m.user_id",
            "COALESCE(o.display_name, o.user_name)",
            "o.user_name_key",
        ),
    };
    let mut by_id: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT {key}, o.id, {shown} FROM scim_group_members m JOIN {other} \
             WHERE m.organisation_id = $1 AND {key} IN ({}) ORDER BY {key}, {order}",
            placeholders(2, chunk.len())
        );
        let mut q = stmt(sql).bind(organisation_id);
        for id in chunk {
            q = q.bind(id);
        }
        for mut r in q.fetch_all(tx).await? {
            by_id
                .entry(r.take(0))
                .or_default()
                .push((r.take(1), r.take(2)));
        }
    }
    Ok(ids
        .iter()
        .map(|id| by_id.remove(id).unwrap_or_default())
        .collect())
}

/// How a job reads a user or group.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading<'a> {
    /// The integration whose externalId the row comes with (`None`: no externalId).
    pub integration_id: Option<&'a str>,
    /// Whether the row stays locked until the job ends.
    pub lock: bool,
    /// Whether the related resources are loaded too.
    pub with_related: bool,
}

/// The resource `id` of the organisation, read as `reading` says.
pub(super) async fn read<B: RowBody>(
    backend: Backend,
    tx: &mut Tx,
    organisation_id: &str,
    id: &str,
    reading: Reading<'_>,
) -> Result<Option<Stored<ResourceRow<B>>>> {
    let lock = if reading.lock {
        backend.for_update()
    } else {
        ""
    };
    let sql = format!(
        "SELECT {}, {} FROM {} WHERE organisation_id = $1 AND id = $2{lock}",
        B::columns(),
        B::TABLE.external_id_column(3),
        B::TABLE.name(),
    );
    let row = stmt(sql)
        .bind(organisation_id)
        .bind(id)
        .bind(reading.integration_id.unwrap_or_default())
        .fetch_optional(tx)
        .await?;
    let Some(row) = row.map(B::row) else {
        return Ok(None);
    };
    let related = if reading.with_related {
        related(tx, B::TABLE, organisation_id, std::slice::from_ref(&row.id))
            .await?
            .pop()
    } else {
        None
    };
    Ok(Some(Stored { row, related }))
}

/// The row `target` names, locked until the job ends: `None` when there is none,
/// `PreconditionFailed` when its version is not one `target` allows.
pub(super) async fn read_target<B: RowBody>(
    backend: Backend,
    tx: &mut Tx,
    target: &Target,
) -> Result<Option<ResourceRow<B>>> {
    let reading = Reading {
        integration_id: Some(&target.integration_id),
        lock: true,
        with_related: false,
    };
    let Some(Stored { row, .. }) =
        read::<B>(backend, tx, &target.organisation_id, &target.id, reading).await?
    else {
        return Ok(None);
    };
    if target
        .if_match
        .as_ref()
        .is_some_and(|versions| !versions.contains(&row.version))
    {
        return Err(Error::PreconditionFailed);
    }
    Ok(Some(row))
}

impl Store {
    /// See [`read`]: one read job.
    pub(crate) async fn resource<B: RowBody>(
        &self,
        organisation_id: &str,
        id: &str,
        integration_id: Option<&str>,
        with_related: bool,
    ) -> Result<Option<Stored<ResourceRow<B>>>> {
        let backend = self.backend();
        let (organisation_id, id, integration_id) = (
            organisation_id.to_owned(),
            id.to_owned(),
            integration_id.map(str::to_owned),
        );
        self.read(move |tx| {
            Box::pin(async move {
                let reading = Reading {
                    integration_id: integration_id.as_deref(),
                    lock: false,
                    with_related,
                };
                read(backend, tx, &organisation_id, &id, reading).await
            })
        })
        .await
    }

    /// One page of the organisation's resources matching the query, in its sort order
    /// (oldest first without one), with their related resources when `with_related`, and
    /// the number of all matches: one read job.
    pub(crate) async fn list<B: RowBody>(
        &self,
        organisation_id: &str,
        query: ListQuery,
        with_related: bool,
    ) -> Result<Listed<ResourceRow<B>>> {
        let sql = ListSql::new(
            self.backend(),
            B::TABLE,
            &B::columns(),
            organisation_id,
            &query,
        );
        let organisation_id = organisation_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let (total, rows) = sql.run(tx, &query).await?;
                let rows: Vec<ResourceRow<B>> = rows.into_iter().map(B::row).collect();
                let related: Vec<Option<Vec<(String, String)>>> = if with_related {
                    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                    related(tx, B::TABLE, &organisation_id, &ids)
                        .await?
                        .into_iter()
                        .map(Some)
                        .collect()
                } else {
                    vec![None; rows.len()]
                };
                let page = rows
                    .into_iter()
                    .zip(related)
                    .map(|(row, related)| Stored { row, related })
                    .collect();
                Ok(Listed { total, page })
            })
        })
        .await
    }

    /// Deletes a user or group as `deletion` says, in one job: the row goes with everything
    /// hanging from it (values, memberships, externalIds), so no SCIM request can find it
    /// again; the console's record of it is kept, or its activity-log bodies erased, by the
    /// deleting integration's setting. False when it does not exist; `PreconditionFailed`
    /// when it does at a version `if_match` does not name.
    pub(crate) async fn delete<B: RowBody>(&self, deletion: Deletion) -> Result<bool> {
        let backend = self.backend();
        let target = &deletion.target;
        let origin =
            Origin::of_request(&target.organisation_id, &target.integration_id, deletion.at);
        self.write(move |tx| {
            Box::pin(async move {
                let Some(row) = read_target::<B>(backend, tx, &deletion.target).await? else {
                    return Ok(false);
                };
                let Target {
                    organisation_id,
                    id,
                    ..
                } = &deletion.target;
                if let Some(change) = B::leaving(backend, &deletion) {
                    change.execute(tx).await?;
                }
                match deletion.mode {
                    DeleteMode::Keep => {
                        if let Some(origin) = &origin {
                            let subject = Subject {
                                table: B::TABLE,
                                id,
                                name: &row.body.name()?,
                            };
                            history::record(tx, origin, subject, Action::Deleted, &[]).await?;
                        }
                        B::record(backend, row, &deletion)?.execute(tx).await?;
                    }
                    DeleteMode::Erase => {
                        erase_history(tx, organisation_id, id, deletion.at).await?;
                        history::erase(tx, organisation_id, id).await?;
                    }
                }
                stmt(format!(
                    "DELETE FROM {} WHERE organisation_id = $1 AND id = $2",
                    B::TABLE.name()
                ))
                .bind(organisation_id)
                .bind(id)
                .execute(tx)
                .await?;
                Ok(true)
            })
        })
        .await
    }

    /// The kind of integration that created the user or group `id`, for the console.
    pub(crate) async fn created_by(
        &self,
        table: Table,
        organisation_id: &str,
        id: &str,
    ) -> Result<Option<String>> {
        let (organisation_id, id) = (organisation_id.to_owned(), id.to_owned());
        self.read(move |tx| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT i.kind FROM {} r JOIN directory_integrations i ON i.id = r.integration_id \
                     WHERE r.organisation_id = $1 AND r.id = $2",
                    table.name()
                );
                stmt(sql)
                    .bind(&organisation_id)
                    .bind(&id)
                    .fetch_optional_scalar(tx)
                    .await
            })
        })
        .await
    }
}

/// After a guarded write changed nothing: `Ok(())` if the resource is gone,
/// `PreconditionFailed` if it exists (so its version did not match). Asked in the write's
/// transaction, which sees what it saw.
pub(super) async fn missing_or_changed(
    tx: &mut Tx,
    table: Table,
    organisation_id: &str,
    id: &str,
) -> Result<()> {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE organisation_id = $1 AND id = $2",
        table.name()
    );
    let exists: i64 = stmt(sql)
        .bind(organisation_id)
        .bind(id)
        .fetch_scalar(tx)
        .await?;
    if exists == 0 {
        Ok(())
    } else {
        Err(Error::PreconditionFailed)
    }
}

/// Sets (or with `None` clears) the externalId `integration_id` keeps for a resource.
pub(super) async fn set_external_id(
    tx: &mut Tx,
    table: Table,
    resource_id: &str,
    integration_id: &str,
    external_id: Option<&str>,
) -> Result<()> {
    let ids = table.external_ids();
    match external_id {
        Some(e) => {
            stmt(format!(
                "INSERT INTO {ids} (resource_id, integration_id, external_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (resource_id, integration_id) DO UPDATE SET external_id = excluded.external_id \
                 WHERE {ids}.external_id <> excluded.external_id"
            ))
            .bind(resource_id)
            .bind(integration_id)
            .bind(e)
            .execute(tx)
            .await?;
        }
        None => {
            stmt(format!(
                "DELETE FROM {ids} WHERE resource_id = $1 AND integration_id = $2"
            ))
            .bind(resource_id)
            .bind(integration_id)
            .execute(tx)
            .await?;
        }
    }
    Ok(())
}

/// Everything of `table` in the organisation, from the kept counts.
pub(super) async fn count(store: &Store, table: Table, organisation_id: &str) -> Result<i64> {
    let organisation_id = organisation_id.to_owned();
    store
        .read(move |tx| {
            Box::pin(async move {
                stmt(super::filter_sql::count_sql(table))
                    .bind(&organisation_id)
                    .bind("")
                    .fetch_scalar(tx)
                    .await
            })
        })
        .await
}

/// The reads, the count and the delete that users and groups share, under their own names
/// (`user`, `list_users`, `count_users`, `delete_user`, and the same for groups): each is
/// the generic function above, written once.
macro_rules! resource_api {
    ($body:ty, $noun:literal, $get:ident, $list:ident, $count:ident, $delete:ident) => {
        impl Store {
            #[doc = concat!(
                "The ", $noun, " `id`, with the externalId `integration_id` keeps for it, and \
                 its related resources when `with_related` (see [`Store::resource`])."
            )]
            pub async fn $get(
                &self,
                organisation_id: &str,
                id: &str,
                integration_id: Option<&str>,
                with_related: bool,
            ) -> Result<Option<Stored<ResourceRow<$body>>>> {
                self.resource(organisation_id, id, integration_id, with_related)
                    .await
            }

            #[doc = concat!(
                "One page of the organisation's ", $noun, "s matching the query, with their \
                 related resources when `with_related`, and the number of all matches (see \
                 [`Store::list`])."
            )]
            pub async fn $list(
                &self,
                organisation_id: &str,
                query: ListQuery,
                with_related: bool,
            ) -> Result<Listed<ResourceRow<$body>>> {
                self.list(organisation_id, query, with_related).await
            }

            #[doc = concat!("How many ", $noun, "s the organisation has.")]
            pub async fn $count(&self, organisation_id: &str) -> Result<i64> {
                count(self, <$body as RowBody>::TABLE, organisation_id).await
            }

            #[doc = concat!("Deletes a ", $noun, " (see [`Store::delete`]).")]
            pub async fn $delete(&self, deletion: Deletion) -> Result<bool> {
                self.delete::<$body>(deletion).await
            }
        }
    };
}

resource_api!(UserBody, "user", user, list_users, count_users, delete_user);
resource_api!(
    GroupBody,
    "group",
    group,
    list_groups,
    count_groups,
    delete_group
);
