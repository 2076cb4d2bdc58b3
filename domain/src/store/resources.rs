//! What users and groups have in common in storage: a row read with the externalId of the
//! integration reading it, the related resources loaded with it when asked (a user's
//! groups, a group's members), lists with a count of all matches, and guarded deletion.

use super::activity::erase_history;
use super::db::{stmt, Query, Row, Tx};
use super::filter_sql::{ListSql, Table};
use super::history::{self, Origin, Subject};
use super::{groups, users, Backend, GroupRow, ListQuery, Store, UserRow};
use crate::error::{Error, Result};
use crate::history::Action;
use crate::integrations::DeleteMode;

/// A stored user or group row: its table, the columns read, how a row of them becomes one.
pub(crate) trait ResourceRow: Sized + Send + 'static {
    const TABLE: Table;
    /// The columns read, before the externalId column the reads add.
    const COLUMNS: &'static str;
    fn from_row(row: Row) -> Self;
    fn id(&self) -> &str;
    fn version(&self) -> i64;
    /// The name the console shows it by.
    fn name(&self) -> Result<String>;
    /// The statement that writes the console's record of the resource about to be deleted,
    /// copying from its row and its related resources' what the record keeps.
    fn record(backend: Backend, row: Self, deletion: &Deletion) -> Result<Query<'static>>;
    /// The statement that records, on the resources related to this one, that it leaves
    /// them, run before its row goes; `None` when nothing records it.
    fn leaving(backend: Backend, deletion: &Deletion) -> Option<Query<'static>>;
}

/// A DELETE of a user or group: which one, on what condition, by which integration and
/// what the console keeps of it.
#[derive(Debug, Clone)]
pub struct Deletion {
    pub organisation_id: String,
    pub id: String,
    /// `If-Match` versions; `None` when absent or `*`.
    pub if_match: Option<Vec<i64>>,
    /// The integration deleting it.
    pub integration_id: String,
    pub mode: DeleteMode,
    pub at: i64,
}

impl Deletion {
    /// `sql`, which writes a deleted record, with what every record takes bound: `$1` the
    /// organisation, `$2` the id, `$3` the deleting integration, `$4` the externalId it kept,
    /// `$5` the time of deletion.
    pub(super) fn record(&self, sql: String, external_id: Option<String>) -> Query<'static> {
        stmt(sql)
            .bind(self.organisation_id.clone())
            .bind(self.id.clone())
            .bind(self.integration_id.clone())
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

/// The resources related to each of `ids` of `table`, in the order of `ids`.
pub(super) async fn related(
    tx: &mut Tx,
    table: Table,
    organisation_id: &str,
    ids: &[String],
) -> Result<Vec<Vec<(String, String)>>> {
    match table {
        Table::Users => users::groups_of_users(tx, organisation_id, ids).await,
        Table::Groups => groups::members_of(tx, organisation_id, ids).await,
    }
}

/// The resource `id` with the externalId `integration_id` keeps for it, and its related
/// resources when `with_related`. `lock` locks its row until the job ends.
pub(super) async fn read<R: ResourceRow>(
    backend: Backend,
    tx: &mut Tx,
    organisation_id: &str,
    id: &str,
    integration_id: Option<&str>,
    lock: bool,
    with_related: bool,
) -> Result<Option<Stored<R>>> {
    let lock = if lock { backend.for_update() } else { "" };
    let sql = format!(
        "SELECT {}, {} FROM {} WHERE organisation_id = $1 AND id = $2{lock}",
        R::COLUMNS,
        R::TABLE.external_id_column(3),
        R::TABLE.name(),
    );
    let row = stmt(sql)
        .bind(organisation_id)
        .bind(id)
        .bind(integration_id.unwrap_or_default())
        .fetch_optional(tx)
        .await?;
    let Some(row) = row.map(R::from_row) else {
        return Ok(None);
    };
    let related = if with_related {
        related(tx, R::TABLE, organisation_id, &[row.id().to_owned()])
            .await?
            .pop()
    } else {
        None
    };
    Ok(Some(Stored { row, related }))
}

impl Store {
    /// See [`read`]: one read job.
    pub(super) async fn resource<R: ResourceRow>(
        &self,
        organisation_id: &str,
        id: &str,
        integration_id: Option<&str>,
        with_related: bool,
    ) -> Result<Option<Stored<R>>> {
        let backend = self.backend();
        let (organisation_id, id, integration_id) = (
            organisation_id.to_owned(),
            id.to_owned(),
            integration_id.map(str::to_owned),
        );
        self.read(move |tx| {
            Box::pin(async move {
                read(
                    backend,
                    tx,
                    &organisation_id,
                    &id,
                    integration_id.as_deref(),
                    false,
                    with_related,
                )
                .await
            })
        })
        .await
    }

    /// One page of the organisation's resources matching the query, in its sort order
    /// (oldest first without one), with their related resources when `with_related`, and
    /// the number of all matches: one read job.
    pub(super) async fn list<R: ResourceRow>(
        &self,
        organisation_id: &str,
        query: ListQuery,
        with_related: bool,
    ) -> Result<Listed<R>> {
        let sql = ListSql::new(
            self.backend(),
            R::TABLE,
            R::COLUMNS,
            organisation_id,
            &query,
        );
        let organisation_id = organisation_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let (total, rows) = sql.run(tx, &query).await?;
                let rows: Vec<R> = rows.into_iter().map(R::from_row).collect();
                let related: Vec<Option<Vec<(String, String)>>> = if with_related {
                    let ids: Vec<String> = rows.iter().map(|r| r.id().to_owned()).collect();
                    related(tx, R::TABLE, &organisation_id, &ids)
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
    pub(super) async fn delete<R: ResourceRow>(&self, deletion: Deletion) -> Result<bool> {
        let backend = self.backend();
        let origin = Origin::of_request(
            &deletion.organisation_id,
            &deletion.integration_id,
            deletion.at,
        );
        self.write(move |tx| {
            Box::pin(async move {
                let Deletion {
                    organisation_id,
                    id,
                    ..
                } = &deletion;
                let Some(Stored { row, .. }) = read::<R>(
                    backend,
                    tx,
                    organisation_id,
                    id,
                    Some(&deletion.integration_id),
                    true,
                    false,
                )
                .await?
                else {
                    return Ok(false);
                };
                if deletion
                    .if_match
                    .as_ref()
                    .is_some_and(|versions| !versions.contains(&row.version()))
                {
                    return Err(Error::PreconditionFailed);
                }
                if let Some(change) = R::leaving(backend, &deletion) {
                    change.execute(tx).await?;
                }
                match deletion.mode {
                    DeleteMode::Keep => {
                        if let Some(origin) = &origin {
                            let subject = Subject {
                                table: R::TABLE,
                                id,
                                name: &row.name()?,
                            };
                            history::record(tx, origin, subject, Action::Deleted, &[]).await?;
                        }
                        R::record(backend, row, &deletion)?.execute(tx).await?;
                    }
                    DeleteMode::Erase => {
                        erase_history(tx, organisation_id, id, deletion.at).await?;
                        history::erase(tx, organisation_id, id).await?;
                    }
                }
                stmt(format!(
                    "DELETE FROM {} WHERE organisation_id = $1 AND id = $2",
                    R::TABLE.name()
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
    ($row:ty, $noun:literal, $get:ident, $list:ident, $count:ident, $delete:ident) => {
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
            ) -> Result<Option<Stored<$row>>> {
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
            ) -> Result<Listed<$row>> {
                self.list(organisation_id, query, with_related).await
            }

            #[doc = concat!("How many ", $noun, "s the organisation has.")]
            pub async fn $count(&self, organisation_id: &str) -> Result<i64> {
                count(self, <$row as ResourceRow>::TABLE, organisation_id).await
            }

            #[doc = concat!("Deletes a ", $noun, " (see [`Store::delete`]).")]
            pub async fn $delete(&self, deletion: Deletion) -> Result<bool> {
                self.delete::<$row>(deletion).await
            }
        }
    };
}

resource_api!(UserRow, "user", user, list_users, count_users, delete_user);
resource_api!(
    GroupRow,
    "group",
    group,
    list_groups,
    count_groups,
    delete_group
);
