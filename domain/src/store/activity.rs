//! Storage of the sync activity log (`scim_requests`).

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use super::counts::{count_requests, prune_request_counts};
use super::db::{stmt, Row, Tx};
use super::{placeholders, Store, CHUNK};
use crate::error::Result;

/// One SCIM request, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEntry {
    pub organisation_id: String,
    pub integration_id: String,
    pub at: i64,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub resource_type: Option<&'static str>,
    pub resource_id: Option<String>,
    pub duration_us: i64,
    pub error: Option<String>,
    pub request_body: Option<String>,
    /// The request's `X-Request-Id`, as its response and log line carry it.
    pub request_id: Option<String>,
}

/// A recorded request as the console lists it: its request line and outcome, without the
/// error and body ([`RequestDetail`]), which a list of them would carry by the megabyte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub id: i64,
    pub integration_kind: Option<String>,
    pub at: i64,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub duration_us: i64,
    /// Whether it has an error, a body or a request id to show.
    pub has_detail: bool,
}

/// What a recorded request's row opens to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestDetail {
    pub error: Option<String>,
    pub request_body: Option<String>,
    /// The request's `X-Request-Id`, as its response and log lines carry it.
    pub request_id: Option<String>,
}

/// The error a request refused for presenting a retired token is recorded with (a reset
/// replaced its token; see `integrations::retired`).
pub const RETIRED_TOKEN: &str =
    "retiredToken: the token was reset; the IdP must be given the new one";

/// Which outcomes of recorded requests to list.
pub use model::StatusFilter;

/// Which recorded requests to list: newest first, `limit` of them, older than `before_id`.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery<'a> {
    pub status: StatusFilter,
    pub integration_kind: Option<&'a str>,
    /// Only the requests that changed this user or group, or failed on it (reads of it
    /// that succeeded are not indexed by resource).
    pub resource_id: Option<&'a str>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

const COLUMNS: usize = 12;
/// Rows per INSERT: ten keep the statement (and its cached preparation) small.
const ROWS_PER_STATEMENT: usize = 10;
/// Rows per job when writing the log.
const ROWS_PER_TRANSACTION: usize = 100;
/// Rows deleted per job when pruning the log.
const PRUNE_ROWS: i64 = 1000;

impl Store {
    /// Writes recorded requests, 100 to a job, and counts them in their hours' buckets in
    /// the same job: on SQLite each joins the SCIM writes around it in the writer's turn
    /// rather than holding them all up while a second's worth of log is written. On an
    /// error, the jobs before it are kept.
    pub async fn insert_requests(&self, entries: Vec<RequestEntry>) -> Result<()> {
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let mut part: Vec<RequestEntry> = entries.by_ref().take(ROWS_PER_TRANSACTION).collect();
            self.write(move |tx| {
                Box::pin(async move {
                    let mut organisations: Vec<&str> =
                        part.iter().map(|e| e.organisation_id.as_str()).collect();
                    organisations.sort_unstable();
                    organisations.dedup();
                    for organisation_id in organisations {
                        lock_log(tx, organisation_id).await?;
                    }
                    strip_erased(tx, &mut part).await?;
                    for chunk in part.chunks(ROWS_PER_STATEMENT) {
                        let rows: Vec<String> = (0..chunk.len())
                            .map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS)))
                            .collect();
                        let sql = format!(
                            "INSERT INTO scim_requests (organisation_id, integration_id, at, method, path, status, \
                             resource_type, resource_id, duration_us, error, request_body, request_id) VALUES {}",
                            rows.join(", ")
                        );
                        let mut query = stmt(sql);
                        for e in chunk {
                            query = query
                                .bind(&e.organisation_id)
                                .bind(&e.integration_id)
                                .bind(e.at)
                                .bind(&e.method)
                                .bind(&e.path)
                                .bind(i64::from(e.status))
                                .bind(e.resource_type)
                                .bind(&e.resource_id)
                                .bind(e.duration_us)
                                .bind(&e.error)
                                .bind(&e.request_body)
                                .bind(&e.request_id);
                        }
                        query.execute(tx).await?;
                    }
                    count_requests(
                        tx,
                        part.iter()
                            .map(|e| (e.integration_id.as_str(), e.at, e.status >= 400)),
                    )
                    .await
                })
            })
            .await?;
        }
        Ok(())
    }

    /// Deletes recorded requests, and the change history's entries, older than `before` (ms
    /// since the epoch); how many requests. Ids follow time (entries are written in the
    /// order they were recorded, give or take a batch), so each job looks at the thousand
    /// oldest rows only and deletes those older than `before`, and pruning ends at the
    /// first job that finds one that is not: a large log never holds the writer for long,
    /// and needs no index on time.
    pub async fn prune_requests(&self, before: i64) -> Result<u64> {
        let deleted = self.prune_oldest("scim_requests", "id", before).await?;
        self.prune_oldest("resource_changes", "seq", before).await?;
        // An erased resource is remembered only while requests on it may still arrive; any
        // that do after the log's retention would be pruned at once. The hours' counts go
        // with their rows.
        self.write(move |tx| {
            Box::pin(async move {
                stmt("DELETE FROM erased_resources WHERE at < $1")
                    .bind(before)
                    .execute(tx)
                    .await?;
                prune_request_counts(tx, before).await
            })
        })
        .await?;
        Ok(deleted)
    }

    /// Deletes the rows of `table` older than `before`, oldest `key` first (see
    /// [`Store::prune_requests`]); how many.
    async fn prune_oldest(
        &self,
        table: &'static str,
        key: &'static str,
        before: i64,
    ) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let done = self
                .write(move |tx| {
                    Box::pin(async move {
                        stmt(format!(
                            "DELETE FROM {table} WHERE at < $1 AND {key} IN \
                             (SELECT {key} FROM {table} ORDER BY {key} LIMIT $2)"
                        ))
                        .bind(before)
                        .bind(PRUNE_ROWS)
                        .execute(tx)
                        .await
                    })
                })
                .await?;
            deleted += done;
            if done < PRUNE_ROWS as u64 {
                return Ok(deleted);
            }
        }
    }

    /// The organisation's recorded requests, newest first, without their errors and bodies.
    pub async fn requests(
        &self,
        organisation_id: &str,
        query: &RequestQuery<'_>,
    ) -> Result<Vec<RequestRow>> {
        let mut sql = String::from(
            "SELECT r.id, i.kind, r.at, r.method, r.path, CAST(r.status AS BIGINT), r.resource_type, \
             r.resource_id, r.duration_us, \
             CAST(CASE WHEN r.error IS NULL AND r.request_body IS NULL AND r.request_id IS NULL \
             THEN 0 ELSE 1 END AS BIGINT) \
             FROM scim_requests r LEFT JOIN directory_integrations i ON i.id = r.integration_id \
             WHERE r.organisation_id = $1",
        );
        let mut binds: Vec<String> = vec![organisation_id.to_owned()];
        match query.status {
            StatusFilter::All => {}
            StatusFilter::Failures => sql.push_str(" AND r.status >= 400"),
            StatusFilter::RetiredToken => {
                binds.push(RETIRED_TOKEN.to_owned());
                sql.push_str(&format!(
                    " AND r.status = 401 AND r.error = ${}",
                    binds.len()
                ));
            }
        }
        if let Some(kind) = query.integration_kind {
            binds.push(kind.to_owned());
            sql.push_str(&format!(" AND i.kind = ${}", binds.len()));
        }
        if let Some(id) = query.resource_id {
            binds.push(id.to_owned());
            sql.push_str(&format!(
                " AND r.resource_id = ${} AND (r.method <> 'GET' OR r.status >= 400)",
                binds.len()
            ));
        }
        if let Some(before) = query.before_id {
            sql.push_str(&format!(" AND r.id < {before}"));
        }
        sql.push_str(&format!(" ORDER BY r.id DESC LIMIT {}", query.limit.max(0)));
        self.read(move |tx| {
            Box::pin(async move {
                let mut q = stmt(&sql);
                for b in &binds {
                    q = q.bind(b);
                }
                let rows = q.fetch_all(tx).await?;
                Ok(rows.into_iter().map(request_row).collect())
            })
        })
        .await
    }

    /// The error and body of the organisation's recorded request `id`; `None` when it has
    /// no such request (another organisation's included).
    pub async fn request_detail(
        &self,
        organisation_id: &str,
        id: i64,
    ) -> Result<Option<RequestDetail>> {
        let organisation_id = organisation_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                Ok(stmt(
                    "SELECT error, request_body, request_id FROM scim_requests \
                     WHERE id = $1 AND organisation_id = $2",
                )
                .bind(id)
                .bind(&organisation_id)
                .fetch_optional(tx)
                .await?
                .map(|mut r| RequestDetail {
                    error: r.take(0),
                    request_body: r.take(1),
                    request_id: r.take(2),
                }))
            })
        })
        .await
    }
}

/// Erases a resource's history as a DELETE under the "erase" setting does: the requests on
/// it keep only their request line (method, path, status, time), without body or error
/// detail, and the resource is noted as erased so that requests on it written later are
/// stored the same way. Only requests the resource index holds can have a body or an error
/// (a successful GET has neither), so the index finds every one.
pub(super) async fn erase_history(
    tx: &mut Tx,
    organisation_id: &str,
    resource_id: &str,
    at: i64,
) -> Result<()> {
    lock_log(tx, organisation_id).await?;
    stmt(
        "INSERT INTO erased_resources (organisation_id, resource_id, at) VALUES ($1, $2, $3) \
         ON CONFLICT (organisation_id, resource_id) DO NOTHING",
    )
    .bind(organisation_id)
    .bind(resource_id)
    .bind(at)
    .execute(tx)
    .await?;
    stmt(
        "UPDATE scim_requests SET request_body = NULL, error = NULL \
         WHERE organisation_id = $1 AND resource_id = $2 AND (method <> 'GET' OR status >= 400) \
         AND (request_body IS NOT NULL OR error IS NOT NULL)",
    )
    .bind(organisation_id)
    .bind(resource_id)
    .execute(tx)
    .await?;
    Ok(())
}

/// Serialises, on PostgreSQL, the jobs that write an organisation's activity log and those
/// that erase from it, until the job ends: otherwise an entry written concurrently with an
/// erasing DELETE could be invisible to the DELETE's update while the DELETE's note is
/// invisible to the writer, and keep its body. Jobs lock their organisations in one order,
/// so they cannot deadlock. SQLite runs one writing job at a time already.
async fn lock_log(tx: &mut Tx, organisation_id: &str) -> Result<()> {
    if let Tx::Postgres(_) = tx {
        let digest = Sha256::digest(format!("scim_requests:{organisation_id}").as_bytes());
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        stmt("SELECT pg_advisory_xact_lock($1)")
            .bind(i64::from_be_bytes(key))
            .execute(tx)
            .await?;
    }
    Ok(())
}

/// Clears the body and error detail of entries on an erased resource: requests that raced
/// with its DELETE, or were recorded by another instance, and reach the log after it.
async fn strip_erased(tx: &mut Tx, entries: &mut [RequestEntry]) -> Result<()> {
    let mut by_organisation: HashMap<&str, HashSet<&str>> = HashMap::new();
    for e in entries.iter() {
        if let (Some(id), true) = (
            &e.resource_id,
            e.request_body.is_some() || e.error.is_some(),
        ) {
            by_organisation
                .entry(e.organisation_id.as_str())
                .or_default()
                .insert(id.as_str());
        }
    }
    let mut erased: HashSet<(String, String)> = HashSet::new();
    for (organisation_id, ids) in by_organisation {
        let ids: Vec<&str> = ids.into_iter().collect();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT resource_id FROM erased_resources WHERE organisation_id = $1 AND resource_id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = stmt(sql).bind(organisation_id);
            for id in chunk {
                q = q.bind(*id);
            }
            for id in q.fetch_all_scalar::<String>(tx).await? {
                erased.insert((organisation_id.to_owned(), id));
            }
        }
    }
    if erased.is_empty() {
        return Ok(());
    }
    for e in entries.iter_mut() {
        if let Some(id) = &e.resource_id {
            if erased.contains(&(e.organisation_id.clone(), id.clone())) {
                e.request_body = None;
                e.error = None;
            }
        }
    }
    Ok(())
}

fn request_row(mut r: Row) -> RequestRow {
    RequestRow {
        id: r.take(0),
        integration_kind: r.take(1),
        at: r.take(2),
        method: r.take(3),
        path: r.take(4),
        status: r.take(5),
        resource_type: r.take(6),
        resource_id: r.take(7),
        duration_us: r.take(8),
        has_detail: r.take::<i64>(9) != 0,
    }
}
