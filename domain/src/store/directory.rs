//! Storage queries behind the console's Users and Groups pages (the SCIM API never needs them).

use super::db::stmt;
use super::{placeholders, Store, Table, CHUNK};
use crate::error::Result;

impl Store {
    /// The kind of integration that created the user or group `id`.
    pub(crate) async fn created_by(
        &self,
        table: Table,
        organisation_id: &str,
        id: &str,
    ) -> Result<Option<String>> {
        let sql = format!(
            "SELECT i.kind FROM {} r JOIN directory_integrations i ON i.id = r.integration_id \
             WHERE r.organisation_id = $1 AND r.id = $2",
            table.name()
        );
        stmt(&sql)
            .bind(organisation_id)
            .bind(id)
            .fetch_optional_scalar(&self.db)
            .await
    }

    /// Members per group, for the groups of one page.
    pub async fn member_counts(
        &self,
        organisation_id: &str,
        group_ids: &[&str],
    ) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for chunk in group_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT group_id, COUNT(*) FROM scim_group_members \
                 WHERE organisation_id = $1 AND group_id IN ({}) GROUP BY group_id",
                placeholders(2, chunk.len())
            );
            let mut q = stmt(&sql).bind(organisation_id);
            for id in chunk {
                q = q.bind(*id);
            }
            for mut r in q.fetch_all(&self.db).await? {
                out.push((r.take(0), r.take(1)));
            }
        }
        Ok(out)
    }

    /// One page of a group's members by userName: (user id, userName, displayName, active),
    /// and how many members it has.
    pub async fn member_page(
        &self,
        organisation_id: &str,
        group_id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<(String, String, Option<String>, bool)>)> {
        let total: i64 = stmt(
            "SELECT COUNT(*) FROM scim_group_members WHERE organisation_id = $1 AND group_id = $2",
        )
        .bind(organisation_id)
        .bind(group_id)
        .fetch_scalar(&self.db)
        .await?;
        let rows = stmt(
            "SELECT u.id, u.user_name, u.display_name, CAST(CASE WHEN u.active THEN 1 ELSE 0 END AS BIGINT) \
             FROM scim_group_members m JOIN scim_users u ON u.id = m.user_id \
             WHERE m.organisation_id = $1 AND m.group_id = $2 \
             ORDER BY u.user_name_key LIMIT $3 OFFSET $4",
        )
        .bind(organisation_id)
        .bind(group_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.db)
        .await?;
        Ok((
            total,
            rows.into_iter()
                .map(|mut r| (r.take(0), r.take(1), r.take(2), r.take::<i64>(3) != 0))
                .collect(),
        ))
    }
}
