//! The dashboard's figures, read from counts kept where what they count is written
//! (migration 0011): users, groups and deleted records per organisation (`scim_counts`),
//! users per integration (`scim_integration_counts`), both kept by triggers, and requests per
//! integration and hour (`scim_request_counts`), kept by the activity log's writer. Reading
//! them costs a few rows whatever the size of the organisation or of its log.

use std::collections::HashMap;

use super::db::{stmt, Tx};
use super::Store;
use crate::error::Result;

/// The buckets of `scim_request_counts` are this long.
const HOUR_MS: i64 = 60 * 60 * 1000;

/// The bucket `at` (ms since the epoch) is counted in: its hour's first millisecond.
pub(super) fn hour_of(at: i64) -> i64 {
    at.div_euclid(HOUR_MS) * HOUR_MS
}

/// The organisation at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DashboardFigures {
    pub users: i64,
    pub groups: i64,
    /// Records of deleted users, whichever integration deleted them.
    pub deleted_users: i64,
    /// The organisation's integrations, by kind.
    pub integrations: Vec<IntegrationFigures>,
}

/// One integration's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationFigures {
    pub integration_id: String,
    pub kind: String,
    pub has_token: bool,
    pub last_sync_at: Option<i64>,
    /// Users it created, active and deactivated.
    pub users_active: i64,
    pub users_deactivated: i64,
    /// Users it deleted of which the console keeps a record.
    pub users_deleted: i64,
    /// Its requests and failed requests of the window asked for.
    pub requests: i64,
    pub failures: i64,
    /// Its latest failure still in the log: when, and the error (empty once erased).
    pub last_error: Option<(i64, String)>,
}

impl Store {
    /// The dashboard's figures, in one read job. Requests are counted by the hour: those
    /// of the hour 24 hours before `now` (whole) and every hour since, so at most 25 rows
    /// per integration.
    pub async fn dashboard_figures(
        &self,
        organisation_id: &str,
        now: i64,
    ) -> Result<DashboardFigures> {
        let organisation_id = organisation_id.to_owned();
        let since = hour_of(now - 24 * HOUR_MS);
        self.read(move |tx| {
            Box::pin(async move {
                let mut figures = DashboardFigures::default();
                if let Some(mut row) = stmt(
                    "SELECT users, groups, deleted_users FROM scim_counts WHERE organisation_id = $1",
                )
                .bind(&organisation_id)
                .fetch_optional(tx)
                .await?
                {
                    figures.users = row.take(0);
                    figures.groups = row.take(1);
                    figures.deleted_users = row.take(2);
                }
                let requests = requests_since(tx, &organisation_id, since).await?;
                let rows = stmt(
                    "SELECT i.id, i.kind, CAST(CASE WHEN i.token_hash IS NULL THEN 0 ELSE 1 END AS BIGINT), \
                     i.last_sync_at, COALESCE(c.users_active, 0), COALESCE(c.users_deactivated, 0), \
                     COALESCE(c.users_deleted, 0) \
                     FROM directory_integrations i \
                     LEFT JOIN scim_integration_counts c ON c.integration_id = i.id \
                     WHERE i.organisation_id = $1 ORDER BY i.kind",
                )
                .bind(&organisation_id)
                .fetch_all(tx)
                .await?;
                for mut row in rows {
                    let integration_id: String = row.take(0);
                    let (requests, failures) =
                        requests.get(&integration_id).copied().unwrap_or_default();
                    let last_error = stmt(
                        "SELECT at, COALESCE(error, '') FROM scim_requests \
                         WHERE integration_id = $1 AND status >= 400 AND organisation_id = $2 \
                         ORDER BY id DESC LIMIT 1",
                    )
                    .bind(&integration_id)
                    .bind(&organisation_id)
                    .fetch_optional(tx)
                    .await?
                    .map(|mut e| (e.take(0), e.take(1)));
                    figures.integrations.push(IntegrationFigures {
                        integration_id,
                        kind: row.take(1),
                        has_token: row.take::<i64>(2) != 0,
                        last_sync_at: row.take(3),
                        users_active: row.take(4),
                        users_deactivated: row.take(5),
                        users_deleted: row.take(6),
                        requests,
                        failures,
                        last_error,
                    });
                }
                Ok(figures)
            })
        })
        .await
    }
}

/// Requests and failures per integration of the organisation, in the buckets from `since`.
async fn requests_since(
    tx: &mut Tx,
    organisation_id: &str,
    since: i64,
) -> Result<HashMap<String, (i64, i64)>> {
    let rows = stmt(
        "SELECT c.integration_id, CAST(SUM(c.requests) AS BIGINT), CAST(SUM(c.failures) AS BIGINT) \
         FROM directory_integrations i \
         JOIN scim_request_counts c ON c.integration_id = i.id AND c.hour >= $2 \
         WHERE i.organisation_id = $1 GROUP BY c.integration_id",
    )
    .bind(organisation_id)
    .bind(since)
    .fetch_all(tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|mut r| (r.take(0), (r.take(1), r.take(2))))
        .collect())
}

/// Counts `entries` (integration, time, failed) into their hours' buckets, in the job that
/// writes them to the log.
pub(super) async fn count_requests<'e>(
    tx: &mut Tx,
    entries: impl Iterator<Item = (&'e str, i64, bool)>,
) -> Result<()> {
    let mut buckets: HashMap<(&str, i64), (i64, i64)> = HashMap::new();
    for (integration_id, at, failed) in entries {
        let bucket = buckets.entry((integration_id, hour_of(at))).or_default();
        bucket.0 += 1;
        bucket.1 += i64::from(failed);
    }
    let mut buckets: Vec<_> = buckets.into_iter().collect();
    // One order for every writer: two instances' writers cannot deadlock on these rows.
    buckets.sort_unstable();
    for ((integration_id, hour), (requests, failures)) in buckets {
        stmt(
            "INSERT INTO scim_request_counts (integration_id, hour, requests, failures) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (integration_id, hour) DO UPDATE SET \
             requests = scim_request_counts.requests + excluded.requests, \
             failures = scim_request_counts.failures + excluded.failures",
        )
        .bind(integration_id)
        .bind(hour)
        .bind(requests)
        .bind(failures)
        .execute(tx)
        .await?;
    }
    Ok(())
}

/// Deletes the buckets wholly before `before` (ms since the epoch), as the log's rows are.
pub(super) async fn prune_request_counts(tx: &mut Tx, before: i64) -> Result<u64> {
    stmt("DELETE FROM scim_request_counts WHERE hour <= $1")
        .bind(before - HOUR_MS)
        .execute(tx)
        .await
}
