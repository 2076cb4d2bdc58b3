//! What users and groups have in common in storage: a row read with the externalId of the
//! integration reading it, the related resources loaded with it when asked (a user's
//! groups, a group's members), lists with a count of all matches, and guarded deletion.

use super::db::{stmt, Row, Tx};
use super::filter_sql::{version_guard, ListSql, Table};
use super::{groups, users, Backend, ListQuery, Store};
use crate::error::{Error, Result};

/// A stored user or group row: its table, the columns read, how a row of them becomes one.
pub(crate) trait ResourceRow: Sized + Send + 'static {
    const TABLE: Table;
    /// The columns read, before the externalId column the reads add.
    const COLUMNS: &'static str;
    fn from_row(row: Row) -> Self;
    fn id(&self) -> &str;
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

    /// Deletes a row of `table` if its version is one of `if_match` (when given). False when
    /// it does not exist; `PreconditionFailed` when it does at another version.
    pub(super) async fn delete_resource(
        &self,
        table: Table,
        organisation_id: &str,
        id: &str,
        if_match: Option<Vec<i64>>,
    ) -> Result<bool> {
        let (organisation_id, id) = (organisation_id.to_owned(), id.to_owned());
        self.write(move |tx| {
            Box::pin(async move {
                let (guard, versions) = version_guard(if_match.as_deref(), 3);
                let sql = format!(
                    "DELETE FROM {} WHERE organisation_id = $1 AND id = $2{guard}",
                    table.name()
                );
                let mut q = stmt(sql).bind(&organisation_id).bind(&id);
                for v in versions {
                    q = q.bind(v);
                }
                if q.execute(tx).await? == 1 {
                    return Ok(true);
                }
                missing_or_changed(tx, table, &organisation_id, &id)
                    .await
                    .map(|()| false)
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
