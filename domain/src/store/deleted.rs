//! Storage of what the console keeps of deleted users and groups (`deleted_users`,
//! `deleted_groups`): read-only records, written by [`Store::delete`] in the job that deletes
//! the resource. SCIM never reads these tables.

use scim::list::{Sort, SortKey};

use super::db::{stmt, Row};
use super::Store;
use crate::error::Result;

/// A deleted user as the console keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedUserRow {
    pub id: String,
    pub attributes: String,
    /// The kinds of the integrations that created and deleted the user (`None`: gone).
    pub created_by: Option<String>,
    pub deleted_by: Option<String>,
    /// The externalId the deleting integration kept.
    pub external_id: Option<String>,
    /// Their groups when deleted: JSON `[[group id, displayName], ...]`, by displayName.
    pub groups: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: i64,
}

/// A deleted group as the console keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedGroupRow {
    pub id: String,
    pub display_name: String,
    pub created_by: Option<String>,
    pub deleted_by: Option<String>,
    pub external_id: Option<String>,
    /// Its members when deleted: JSON `[[user id, userName, displayName, active (0 or 1)],
    /// ...]`, by userName.
    pub members: String,
    pub member_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: i64,
}

/// Which deleted records the console lists.
#[derive(Debug, Clone, Default)]
pub struct DeletedQuery {
    /// Case-folded text the record's search key must contain; empty for all.
    pub search: String,
    /// Only records of what this integration (by id) created.
    pub created_by: Option<String>,
    /// By the time of deletion (oldest first without one), userName or displayName.
    pub sort: Option<Sort>,
    pub offset: u64,
    pub limit: u32,
}

/// A table of deleted records: its name, the columns a row is read from, and what the
/// console's search looks in.
struct Records {
    table: &'static str,
    columns: &'static str,
    search_column: &'static str,
}

const USERS: Records = Records {
    table: "deleted_users",
    columns: "d.id, d.attributes, c.kind, x.kind, d.external_id, d.groups, d.created_at, \
              d.updated_at, d.deleted_at",
    search_column: "d.search_key",
};

const GROUPS: Records = Records {
    table: "deleted_groups",
    columns: "d.id, d.display_name, c.kind, x.kind, d.external_id, d.members, \
              CAST(d.member_count AS BIGINT), d.created_at, d.updated_at, d.deleted_at",
    search_column: "d.display_name_key",
};

impl Records {
    fn from(&self) -> String {
        format!(
            "FROM {} d LEFT JOIN directory_integrations c ON c.id = d.integration_id \
             LEFT JOIN directory_integrations x ON x.id = d.deleted_by",
            self.table
        )
    }

    /// One page of the organisation's records matching `query`, and how many match: the
    /// count and the page each read through an index on the organisation (records are
    /// written once and never change).
    async fn list(
        &'static self,
        store: &Store,
        organisation_id: &str,
        query: DeletedQuery,
    ) -> Result<(u64, Vec<Row>)> {
        let mut condition = String::from("d.organisation_id = $1");
        let mut binds = vec![organisation_id.to_owned()];
        if !query.search.is_empty() {
            binds.push(query.search);
            condition.push_str(" AND ");
            condition.push_str(
                &store
                    .backend()
                    .contains(self.search_column, &format!("${}", binds.len())),
            );
        }
        if let Some(created_by) = query.created_by {
            binds.push(created_by);
            condition.push_str(&format!(" AND d.integration_id = ${}", binds.len()));
        }
        let (key, descending) = match query.sort {
            Some(Sort {
                key: SortKey::UserName,
                descending,
            }) if self.table == USERS.table => ("d.user_name_key", descending),
            Some(Sort {
                key: SortKey::DisplayName,
                descending,
            }) => ("d.display_name_key", descending),
            Some(Sort { descending, .. }) => ("d.deleted_at", descending),
            None => ("d.deleted_at", false),
        };
        let direction = if descending { "DESC" } else { "ASC" };
        let count = format!("SELECT COUNT(*) FROM {} d WHERE {condition}", self.table);
        let page = format!(
            "SELECT {} {} WHERE {condition} ORDER BY {key} {direction}, d.id {direction} \
             LIMIT {} OFFSET {}",
            self.columns,
            self.from(),
            query.limit,
            query.offset
        );
        store
            .read(move |tx| {
                Box::pin(async move {
                    let mut total = stmt(&count);
                    let mut rows = stmt(&page);
                    for b in &binds {
                        total = total.bind(b);
                        rows = rows.bind(b);
                    }
                    let total: i64 = total.fetch_scalar(tx).await?;
                    let rows = rows.fetch_all(tx).await?;
                    Ok((u64::try_from(total).unwrap_or_default(), rows))
                })
            })
            .await
    }

    /// The organisation's record `id`.
    async fn one(
        &'static self,
        store: &Store,
        organisation_id: &str,
        id: &str,
    ) -> Result<Option<Row>> {
        let sql = format!(
            "SELECT {} {} WHERE d.organisation_id = $1 AND d.id = $2",
            self.columns,
            self.from()
        );
        let (organisation_id, id) = (organisation_id.to_owned(), id.to_owned());
        store
            .read(move |tx| {
                Box::pin(async move {
                    stmt(&sql)
                        .bind(&organisation_id)
                        .bind(&id)
                        .fetch_optional(tx)
                        .await
                })
            })
            .await
    }
}

fn deleted_user(mut r: Row) -> DeletedUserRow {
    DeletedUserRow {
        id: r.take(0),
        attributes: r.take(1),
        created_by: r.take(2),
        deleted_by: r.take(3),
        external_id: r.take(4),
        groups: r.take(5),
        created_at: r.take(6),
        updated_at: r.take(7),
        deleted_at: r.take(8),
    }
}

fn deleted_group(mut r: Row) -> DeletedGroupRow {
    DeletedGroupRow {
        id: r.take(0),
        display_name: r.take(1),
        created_by: r.take(2),
        deleted_by: r.take(3),
        external_id: r.take(4),
        members: r.take(5),
        member_count: r.take(6),
        created_at: r.take(7),
        updated_at: r.take(8),
        deleted_at: r.take(9),
    }
}

impl Store {
    /// One page of the organisation's deleted users, and how many match.
    pub async fn deleted_users(
        &self,
        organisation_id: &str,
        query: DeletedQuery,
    ) -> Result<(u64, Vec<DeletedUserRow>)> {
        let (total, rows) = USERS.list(self, organisation_id, query).await?;
        Ok((total, rows.into_iter().map(deleted_user).collect()))
    }

    pub async fn deleted_user(
        &self,
        organisation_id: &str,
        id: &str,
    ) -> Result<Option<DeletedUserRow>> {
        Ok(USERS
            .one(self, organisation_id, id)
            .await?
            .map(deleted_user))
    }

    /// One page of the organisation's deleted groups, and how many match.
    pub async fn deleted_groups(
        &self,
        organisation_id: &str,
        query: DeletedQuery,
    ) -> Result<(u64, Vec<DeletedGroupRow>)> {
        let (total, rows) = GROUPS.list(self, organisation_id, query).await?;
        Ok((total, rows.into_iter().map(deleted_group).collect()))
    }

    pub async fn deleted_group(
        &self,
        organisation_id: &str,
        id: &str,
    ) -> Result<Option<DeletedGroupRow>> {
        Ok(GROUPS
            .one(self, organisation_id, id)
            .await?
            .map(deleted_group))
    }

    /// The records of users deleted with a userName (by its case-folded key), newest first,
    /// at most `limit`: (id, deletion time). The user now holding that userName, if any:
    /// (id, creation time). One read job, so both answers agree.
    pub async fn same_user_name(
        &self,
        organisation_id: &str,
        user_name_key: &str,
        limit: i64,
    ) -> Result<(Vec<(String, i64)>, Option<(String, i64)>)> {
        let (organisation_id, key) = (organisation_id.to_owned(), user_name_key.to_owned());
        self.read(move |tx| {
            Box::pin(async move {
                let deleted = stmt(
                    "SELECT id, deleted_at FROM deleted_users \
                     WHERE organisation_id = $1 AND user_name_key = $2 \
                     ORDER BY deleted_at DESC, id DESC LIMIT $3",
                )
                .bind(&organisation_id)
                .bind(&key)
                .bind(limit)
                .fetch_all(tx)
                .await?
                .into_iter()
                .map(|mut r| (r.take(0), r.take(1)))
                .collect();
                let current = stmt(
                    "SELECT id, created_at FROM scim_users \
                     WHERE organisation_id = $1 AND user_name_key = $2",
                )
                .bind(&organisation_id)
                .bind(&key)
                .fetch_optional(tx)
                .await?
                .map(|mut r| (r.take(0), r.take(1)));
                Ok((deleted, current))
            })
        })
        .await
    }
}
