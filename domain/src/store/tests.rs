//! Tests of the store's core on a real SQLite file (and, for the deadline and the kept
//! counts on PostgreSQL, a real PostgreSQL database when `TEST_POSTGRES_URL` is set): grouped
//! writes, deadlines, lanes, the order lists come back in, and the dashboard's kept counts.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use scim::user::UserDoc;
use serde_json::json;

use super::activity::RequestEntry;
use super::db::stmt;
use super::*;
use crate::deadline::{self, Budget};
use crate::error::DbError;
use crate::integrations::{create_token, Actor, IntegrationKind};

/// A store on a temporary file with one organisation and its OneLogin integration.
async fn store() -> (tempfile::TempDir, Store, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let (store, org, integration) = with_organisation(Store::connect(&url).await.unwrap()).await;
    (dir, store, org, integration)
}

/// A store on a new database of the PostgreSQL server `TEST_POSTGRES_URL` names, and what
/// drops the database at the end.
async fn postgres_store() -> (Store, PostgresDatabase) {
    let server = std::env::var("TEST_POSTGRES_URL").expect("TEST_POSTGRES_URL");
    let name = format!("scimtest_{}", uuid::Uuid::new_v4().simple());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
        .await
        .unwrap();
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    let store = Store::connect(&format!("{base}/{name}")).await.unwrap();
    (store, PostgresDatabase { admin, name })
}

struct PostgresDatabase {
    admin: sqlx::PgConnection,
    name: String,
}

impl PostgresDatabase {
    async fn drop(mut self, store: Store) {
        store.close().await;
        sqlx::Executor::execute(
            &mut self.admin,
            format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str(),
        )
        .await
        .unwrap();
    }
}

/// A new organisation in `store` with its OneLogin integration.
async fn with_organisation(store: Store) -> (Store, String, String) {
    let id = uuid::Uuid::new_v4().to_string();
    let org = store
        .find_or_create_organisation(&id, &format!("Org {id}"), 1)
        .await
        .unwrap();
    create_token(&store, &org.id, IntegrationKind::OneLogin, &Actor::Operator)
        .await
        .unwrap();
    let integration = store
        .integration(&org.id, "onelogin")
        .await
        .unwrap()
        .unwrap();
    (store, org.id, integration.id)
}

fn doc(user_name: &str) -> UserDoc {
    UserDoc::from_request(&json!({ "userName": user_name })).unwrap()
}

async fn insert(store: &Store, org: &str, integration: &str, id: &str, name: &str) -> Result<()> {
    store.insert_user(org, integration, id, &doc(name), 1).await
}

async fn exists(store: &Store, org: &str, id: &str) -> bool {
    store.user(org, id, None, false).await.unwrap().is_some()
}

/// Inserts the user "gone" in a job's transaction (one that is to be undone).
async fn insert_gone(tx: &mut Tx, org: &str, integration: &str) -> Result<()> {
    stmt(
        "INSERT INTO scim_users (id, organisation_id, integration_id, user_name, user_name_key, \
         active, attributes, version, created_at, updated_at) \
         VALUES ('gone', $1, $2, 'gone', 'gone', $3, '{}', 1, 1, 1)",
    )
    .bind(org)
    .bind(integration)
    .bind(true)
    .execute(tx)
    .await
    .map(drop)
}

/// A write job that holds the writer until released (see [`release`]).
fn hold_writer(store: &Store) -> (mpsc::Sender<()>, tokio::task::JoinHandle<Result<()>>) {
    let (holder, held) = mpsc::channel::<()>();
    let store = store.clone();
    let job = tokio::spawn(async move {
        store
            .write(move |_| {
                Box::pin(async move {
                    let _ = held.recv();
                    Ok(())
                })
            })
            .await
    });
    (holder, job)
}

/// Releases a job of [`hold_writer`] once it has held the writer longer than a group may
/// take jobs, so that its group ends with it and the jobs queued meanwhile form the next.
async fn release(holder: mpsc::Sender<()>) {
    tokio::time::sleep(super::sqlite::BATCH_TIME * 2).await;
    holder.send(()).unwrap();
}

/// Waits until `n` write jobs wait for their turn.
async fn writes_waiting(store: &Store, n: usize) {
    while store.writer_state().1 < n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn rows_created_in_the_same_millisecond_list_in_creation_order() {
    let (_dir, store, org, integration) = store().await;
    // Ids that sort in the opposite order of creation, all created at the same instant.
    let ids = ["u9", "u5", "u1"];
    for id in ids {
        insert(&store, &org, &integration, id, id).await.unwrap();
    }
    let query = ListQuery {
        limit: 10,
        ..ListQuery::default()
    };
    let listed = store.list_users(&org, query, false).await.unwrap();
    let listed: Vec<&str> = listed.page.iter().map(|u| u.row.id.as_str()).collect();
    assert_eq!(listed, ids);
}

#[tokio::test]
async fn kept_counts_follow_inserts_and_deletes() {
    let (_dir, store, org, integration) = store().await;
    assert_eq!(store.count_users(&org).await.unwrap(), 0);
    for id in ["a", "b", "c"] {
        insert(&store, &org, &integration, id, id).await.unwrap();
    }
    // A failed insert (duplicate userName) counts nothing.
    assert!(insert(&store, &org, &integration, "d", "a").await.is_err());
    let deletion = Deletion {
        target: Target {
            organisation_id: org.clone(),
            integration_id: integration.clone(),
            id: "b".into(),
            if_match: None,
        },
        mode: crate::integrations::DeleteMode::Keep,
        at: 2,
    };
    assert!(store.delete_user(deletion.clone()).await.unwrap());
    assert!(!store.delete_user(deletion).await.unwrap());
    assert_eq!(store.count_users(&org).await.unwrap(), 2);
    let listed = store
        .list_users(&org, ListQuery::default(), false)
        .await
        .unwrap();
    assert_eq!(listed.total, 2);
    assert_eq!(store.count_groups(&org).await.unwrap(), 0);
}

#[tokio::test]
async fn waiting_writes_share_one_transaction_and_a_failed_one_changes_nothing() {
    let (_dir, store, org, integration) = store().await;
    let (holder, held) = hold_writer(&store);
    writes_waiting(&store, 0).await;
    let (groups_before, _) = store.writer_state();
    let mut writes = Vec::new();
    // "dup" takes the userName "a" has just taken in the same transaction.
    for (id, name) in [("a", "a"), ("b", "b"), ("dup", "a"), ("c", "c")] {
        let (writer, org, integration) = (store.clone(), org.clone(), integration.clone());
        writes.push(tokio::spawn(async move {
            insert(&writer, &org, &integration, id, name).await
        }));
        writes_waiting(&store, writes.len()).await;
    }
    release(holder).await;
    held.await.unwrap().unwrap();
    let mut results = Vec::new();
    for write in writes {
        results.push(write.await.unwrap().map_err(|e| e.to_string()));
    }
    assert_eq!(
        results,
        [
            Ok(()),
            Ok(()),
            Err("userName \"a\" is already taken".to_owned()),
            Ok(())
        ]
    );
    let (groups_after, _) = store.writer_state();
    assert_eq!(
        groups_after - groups_before,
        2,
        "the holder's transaction, then one for all four"
    );
    assert_eq!(store.count_users(&org).await.unwrap(), 3);
    assert!(!exists(&store, &org, "dup").await);
}

#[tokio::test]
async fn when_a_group_fails_to_commit_every_answer_says_so_and_nothing_lands() {
    let (_dir, store, org, integration) = store().await;
    let (holder, held) = hold_writer(&store);
    let mut writes = Vec::new();
    for (id, name) in [("a", "a"), ("dup", "a")] {
        let (writer, org, integration) = (store.clone(), org.clone(), integration.clone());
        writes.push(tokio::spawn(async move {
            insert(&writer, &org, &integration, id, name).await
        }));
        writes_waiting(&store, writes.len()).await;
    }
    // A third write of the group breaks a foreign key whose check is deferred to the
    // commit, so the commit itself fails.
    let breaker = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(|tx| {
                    Box::pin(async move {
                        stmt("PRAGMA defer_foreign_keys = ON").execute(tx).await?;
                        stmt("INSERT INTO admins (id, organisation_id, email, password_hash, created_at) \
                              VALUES ('x', 'no such organisation', 'x@example.com', '', 1)")
                            .execute(tx)
                            .await?;
                        Ok(())
                    })
                })
                .await
        })
    };
    writes_waiting(&store, 3).await;
    release(holder).await;
    held.await.unwrap().unwrap();
    assert!(breaker.await.unwrap().is_err());
    for write in writes {
        let answer = write.await.unwrap();
        // Not `Ok`, and not "userName taken" either: the write that took it never landed.
        assert!(
            matches!(answer, Err(Error::Database(DbError::Commit(_)))),
            "{answer:?}"
        );
    }
    assert!(!exists(&store, &org, "a").await);
    assert!(store.admin_by_id("x").await.unwrap().is_none());
    // The writer goes on with the next group.
    insert(&store, &org, &integration, "a", "a").await.unwrap();
}

#[tokio::test]
async fn a_write_that_started_in_time_is_answered_by_its_commit_even_after_the_deadline() {
    let (_dir, store, org, integration) = store().await;
    let (first_holder, first) = hold_writer(&store);
    let write = {
        let (store, org, integration) = (store.clone(), org.clone(), integration.clone());
        tokio::spawn(deadline::run(Duration::from_millis(300), async move {
            insert(&store, &org, &integration, "a", "a").await
        }))
    };
    writes_waiting(&store, 1).await;
    // The last job of the group holds the commit until well after the write's deadline.
    let (last_holder, last) = hold_writer(&store);
    writes_waiting(&store, 2).await;
    release(first_holder).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    last_holder.send(()).unwrap();
    first.await.unwrap().unwrap();
    last.await.unwrap().unwrap();
    assert_eq!(
        write
            .await
            .unwrap()
            .map_err(|_| "timed out")
            .map(|r| r.is_ok()),
        Ok(true),
        "answered by the commit, not by the clock"
    );
    assert!(exists(&store, &org, "a").await);
}

#[tokio::test]
async fn a_write_still_queued_at_its_deadline_is_answered_408_and_never_lands() {
    let (_dir, store, org, integration) = store().await;
    let (holder, held) = hold_writer(&store);
    let write = {
        let (store, org, integration) = (store.clone(), org.clone(), integration.clone());
        tokio::spawn(deadline::run(Duration::from_millis(200), async move {
            insert(&store, &org, &integration, "late", "late").await
        }))
    };
    writes_waiting(&store, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(write.is_finished(), "answered at its deadline");
    // By the request's clock or by the store's, whichever looked first: a 408 either way.
    let answer = write.await.unwrap();
    assert!(
        matches!(answer, Err(deadline::TimedOut) | Ok(Err(Error::Timeout))),
        "{answer:?}"
    );
    release(holder).await;
    held.await.unwrap().unwrap();
    // The writer is free now; the withdrawn write still does not run.
    insert(&store, &org, &integration, "next", "next")
        .await
        .unwrap();
    assert!(!exists(&store, &org, "late").await);
}

/// A statement that counts for a very long time.
const ENDLESS: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                       SELECT COUNT(*) FROM n";

#[tokio::test]
async fn a_statement_past_its_deadline_is_interrupted_and_its_write_rolled_back() {
    let (_dir, store, org, integration) = store().await;
    let started = Instant::now();
    let budget = Budget::new(Instant::now() + Duration::from_millis(300));
    budget.work_for(&org);
    let written = {
        let (org, integration) = (org.clone(), integration.clone());
        deadline::within(
            budget,
            store.write(move |tx| {
                Box::pin(async move {
                    insert_gone(tx, &org, &integration).await?;
                    stmt(ENDLESS).fetch_scalar::<i64>(tx).await
                })
            }),
        )
        .await
    };
    assert!(matches!(written, Err(Error::Timeout)), "{written:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "interrupted, not run to its end"
    );
    assert!(!exists(&store, &org, "gone").await, "rolled back");
    // Reads are cut the same way.
    let budget = Budget::new(Instant::now() + Duration::from_millis(300));
    let read = deadline::within(
        budget,
        store.read(|tx| Box::pin(async move { stmt(ENDLESS).fetch_scalar::<i64>(tx).await })),
    )
    .await;
    assert!(matches!(read, Err(Error::Timeout)), "{read:?}");
    // And the connections serve the next jobs.
    insert(&store, &org, &integration, "next", "next")
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs TEST_POSTGRES_URL; scripts/test runs it against PostgreSQL"]
async fn a_statement_past_its_deadline_is_cancelled_and_rolled_back_on_postgres() {
    let (store, database) = postgres_store().await;
    let (store, org, integration) = with_organisation(store).await;
    let started = Instant::now();
    let budget = Budget::new(Instant::now() + Duration::from_millis(500));
    let written = {
        let (org, integration) = (org.clone(), integration.clone());
        deadline::within(
            budget,
            store.write(move |tx| {
                Box::pin(async move {
                    insert_gone(tx, &org, &integration).await?;
                    stmt("SELECT CAST(COUNT(*) AS BIGINT) FROM pg_sleep(30)")
                        .fetch_scalar::<i64>(tx)
                        .await
                })
            }),
        )
        .await
    };
    assert!(matches!(written, Err(Error::Timeout)), "{written:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!exists(&store, &org, "gone").await, "rolled back");
    insert(&store, &org, &integration, "next", "next")
        .await
        .unwrap();
    database.drop(store).await;
}

#[tokio::test]
async fn a_write_another_process_keeps_locked_out_is_busy_and_loses_nothing() {
    let (dir, store, org, integration) = store().await;
    // Another process holds SQLite's write lock past the busy timeout's retries.
    let other = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let refused = insert(&store, &org, &integration, "a", "a").await;
    assert!(matches!(refused, Err(Error::Busy(_))), "{refused:?}");
    other.execute_batch("ROLLBACK").unwrap();
    assert!(!exists(&store, &org, "a").await);
    // The same write succeeds once the lock is free.
    insert(&store, &org, &integration, "a", "a").await.unwrap();
}

/// Moves the user `id` to its next version, which locks its row until the job ends.
async fn bump(tx: &mut Tx, id: &str) -> Result<()> {
    stmt("UPDATE scim_users SET version = version + 1 WHERE id = $1")
        .bind(id)
        .execute(tx)
        .await
        .map(drop)
}

#[tokio::test]
#[ignore = "needs TEST_POSTGRES_URL; scripts/test runs it against PostgreSQL"]
async fn a_write_that_loses_a_deadlock_is_busy_and_loses_nothing_on_postgres() {
    let (store, database) = postgres_store().await;
    let (store, org, integration) = with_organisation(store).await;
    for id in ["x", "y"] {
        insert(&store, &org, &integration, id, id).await.unwrap();
    }
    // Each write in a lane of its own, so that they run at once.
    let in_lane = |lane: &str| {
        let budget = Budget::new(Instant::now() + Duration::from_secs(20));
        budget.work_for(lane);
        budget
    };
    // Two writes change the same two users in opposite orders: PostgreSQL ends the deadlock
    // by failing one of them, which is answered "busy, try again" (503), not 500.
    let (a_changed, a_holds) = tokio::sync::oneshot::channel::<()>();
    let (b_changed, b_holds) = tokio::sync::oneshot::channel::<()>();
    let write = |lane: &str,
                 first: &'static str,
                 then: &'static str,
                 changed: tokio::sync::oneshot::Sender<()>,
                 other: tokio::sync::oneshot::Receiver<()>| {
        let store = store.clone();
        tokio::spawn(deadline::within(in_lane(lane), async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        bump(tx, first).await?;
                        let _ = changed.send(());
                        let _ = other.await;
                        bump(tx, then).await
                    })
                })
                .await
        }))
    };
    let a = write("a", "x", "y", a_changed, b_holds);
    let b = write("b", "y", "x", b_changed, a_holds);
    let outcomes = [a.await.unwrap(), b.await.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|o| matches!(o, Err(Error::Busy(_)))),
        "{outcomes:?}"
    );
    // Nothing of the write that lost landed: each user moved on by the winner alone.
    for id in ["x", "y"] {
        let user = store.user(&org, id, None, false).await.unwrap().unwrap();
        assert_eq!(user.row.version, 2, "{id}");
    }
    database.drop(store).await;
}

#[tokio::test]
async fn one_organisation_cannot_take_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let options = StoreOptions {
        pool_size: Some(2),
        running_per_organisation: Some(1),
        queued_per_organisation: Some(1),
        queue_wait: Some(Duration::from_millis(300)),
        ..StoreOptions::default()
    };
    let (store, org_a, _) = with_organisation(Store::open(&url, &options).await.unwrap()).await;
    let endless_for = |organisation: &str| {
        let store = store.clone();
        let budget = Budget::new(Instant::now() + Duration::from_secs(3));
        budget.work_for(organisation);
        tokio::spawn(deadline::within(budget, async move {
            store
                .read(|tx| Box::pin(async move { stmt(ENDLESS).fetch_scalar::<i64>(tx).await }))
                .await
        }))
    };
    // A runs one endless read (its limit) and queues one more (its queue is full then).
    let running = endless_for(&org_a);
    let queued = endless_for(&org_a);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A third is refused at once with 503.
    let refused = endless_for(&org_a).await.unwrap();
    assert!(matches!(refused, Err(Error::Busy(_))), "{refused:?}");
    // B is served by the other reader meanwhile.
    let budget = Budget::new(Instant::now() + Duration::from_secs(5));
    budget.work_for("organisation-b");
    let b = deadline::within(budget, store.count_users("organisation-b")).await;
    assert_eq!(b.unwrap(), 0);
    // A's queued read waited its turn for longer than the queue allows: 503.
    assert!(matches!(queued.await.unwrap(), Err(Error::Busy(_))));
    assert!(matches!(running.await.unwrap(), Err(Error::Timeout)));
}

/// A job with a bug.
fn panics() -> Result<()> {
    panic!("a bug in a store job")
}

#[tokio::test]
async fn a_job_that_panics_is_answered_with_an_error_and_the_threads_go_on() {
    let (_dir, store, org, integration) = store().await;
    let read = store.read(|_| Box::pin(async move { panics() })).await;
    assert!(read.is_err());
    let write = {
        let (org, integration) = (org.clone(), integration.clone());
        store
            .write(move |tx| {
                Box::pin(async move {
                    insert_gone(tx, &org, &integration).await?;
                    panics()
                })
            })
            .await
    };
    assert!(write.is_err());
    assert!(!exists(&store, &org, "gone").await, "rolled back");
    insert(&store, &org, &integration, "next", "next")
        .await
        .unwrap();
}

#[tokio::test]
async fn every_sqlite_connection_runs_in_wal_mode_with_foreign_keys() {
    let (_dir, store, _, _) = store().await;
    fn pragmas(tx: &mut Tx) -> JobFuture<'_, (String, i64, i64, i64)> {
        Box::pin(async move {
            Ok((
                stmt("PRAGMA journal_mode").fetch_scalar(tx).await?,
                stmt("PRAGMA foreign_keys").fetch_scalar(tx).await?,
                stmt("PRAGMA synchronous").fetch_scalar(tx).await?,
                stmt("PRAGMA busy_timeout").fetch_scalar(tx).await?,
            ))
        })
    }
    let expected = ("wal".to_owned(), 1, 1, 5000);
    assert_eq!(store.write(pragmas).await.unwrap(), expected);
    // Several readers at once, so the check is not about a single connection.
    let reads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.read(pragmas).await })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap(), expected);
    }
}

/// The dashboard's figures counted the slow way, from the rows themselves.
async fn recount(store: &Store, organisation_id: &str, now: i64) -> DashboardFigures {
    let organisation_id = organisation_id.to_owned();
    let since = super::counts::hour_of(now - 24 * 60 * 60 * 1000);
    store
        .read(move |tx| {
            Box::pin(async move {
                let mut figures = DashboardFigures::default();
                for (table, count) in [
                    ("scim_users", &mut figures.users),
                    ("scim_groups", &mut figures.groups),
                    ("deleted_users", &mut figures.deleted_users),
                ] {
                    *count = stmt(format!(
                        "SELECT COUNT(*) FROM {table} WHERE organisation_id = $1"
                    ))
                    .bind(&organisation_id)
                    .fetch_scalar(tx)
                    .await?;
                }
                let rows = stmt(
                    "SELECT i.id, i.kind, CAST(CASE WHEN i.token_hash IS NULL THEN 0 ELSE 1 END AS BIGINT), \
                     i.last_sync_at, \
                     (SELECT COUNT(*) FROM scim_users u WHERE u.integration_id = i.id AND u.active), \
                     (SELECT COUNT(*) FROM scim_users u WHERE u.integration_id = i.id AND NOT u.active), \
                     (SELECT COUNT(*) FROM deleted_users d WHERE d.deleted_by = i.id), \
                     (SELECT COUNT(*) FROM scim_requests r WHERE r.integration_id = i.id AND r.at >= $2), \
                     (SELECT COUNT(*) FROM scim_requests r WHERE r.integration_id = i.id AND r.at >= $2 \
                      AND r.status >= 400) \
                     FROM directory_integrations i WHERE i.organisation_id = $1 ORDER BY i.kind",
                )
                .bind(&organisation_id)
                .bind(since)
                .fetch_all(tx)
                .await?;
                for mut r in rows {
                    let integration_id: String = r.take(0);
                    let last_error = stmt(
                        "SELECT at, COALESCE(error, '') FROM scim_requests \
                         WHERE integration_id = $1 AND status >= 400 ORDER BY at DESC, id DESC LIMIT 1",
                    )
                    .bind(&integration_id)
                    .fetch_optional(tx)
                    .await?
                    .map(|mut e| (e.take(0), e.take(1)));
                    figures.integrations.push(IntegrationFigures {
                        integration_id,
                        kind: r.take(1),
                        has_token: r.take::<i64>(2) != 0,
                        last_sync_at: r.take(3),
                        users_active: r.take(4),
                        users_deactivated: r.take(5),
                        users_deleted: r.take(6),
                        requests: r.take(7),
                        failures: r.take(8),
                        last_error,
                    });
                }
                Ok(figures)
            })
        })
        .await
        .unwrap()
}

/// The kept figures of every organisation equal their recount.
async fn assert_counts_exact(store: &Store, organisations: &[&str], now: i64, step: &str) {
    for org in organisations {
        let kept = store.dashboard_figures(org, now).await.unwrap();
        assert_eq!(kept, recount(store, org, now).await, "{step}, {org}");
    }
}

/// Creates, deactivates, deletes in both modes, recreates, changes groups and writes and
/// prunes the activity log of two organisations, checking after each step that the kept
/// counts are those a full count gives, and each organisation's are its own.
async fn kept_counts_stay_exact(store: Store) {
    use crate::groups::Group;
    use crate::integrations::{DeleteMode, TokenOwner};
    use crate::provisioning::{Change, User};
    use crate::scim_resource::{ScimResource, Scope};
    const DAY: i64 = 24 * 60 * 60 * 1000;
    /// What `who`'s requests work on.
    fn at<'a>(store: &'a Store, who: &'a TokenOwner) -> Scope<'a> {
        Scope {
            store,
            owner: who,
            base_url: "https://console.example.com/scimapi",
        }
    }
    let now = crate::time::now_ms();
    let (store, acme, acme_onelogin) = with_organisation(store).await;
    let (store, globex, globex_onelogin) = with_organisation(store).await;
    create_token(&store, &acme, IntegrationKind::Okta, &Actor::Operator)
        .await
        .unwrap();
    let acme_okta = store.integration(&acme, "okta").await.unwrap().unwrap().id;
    let owner = |organisation_id: &str, integration_id: &str, on_delete, kind| TokenOwner {
        organisation_id: organisation_id.to_owned(),
        integration_id: integration_id.to_owned(),
        on_delete,
        kind,
    };
    let onelogin = owner(
        &acme,
        &acme_onelogin,
        DeleteMode::Keep,
        IntegrationKind::OneLogin,
    );
    let okta = owner(&acme, &acme_okta, DeleteMode::Erase, IntegrationKind::Okta);
    let hank = owner(
        &globex,
        &globex_onelogin,
        DeleteMode::Keep,
        IntegrationKind::OneLogin,
    );
    let orgs = [acme.as_str(), globex.as_str()];
    let check = |step: &'static str| {
        let store = store.clone();
        async move { assert_counts_exact(&store, &orgs, now, step).await }
    };
    let create = |who: &TokenOwner, name: &str, active: bool| {
        let (store, who) = (store.clone(), who.clone());
        let body = json!({"userName": name, "active": active});
        async move {
            User::create(at(&store, &who), &body, false)
                .await
                .unwrap()
                .meta
                .id
        }
    };
    check("empty").await;

    let mut ada = create(&onelogin, "ada", true).await;
    let bob = create(&onelogin, "bob", true).await;
    let cy = create(&onelogin, "cy", false).await;
    let dee = create(&okta, "dee", true).await;
    let eve = create(&okta, "eve", false).await;
    let hank_id = create(&hank, "hank", true).await;
    create(&hank, "iris", false).await;
    check("created").await;
    let duplicate = json!({"userName": "ADA"});
    assert!(User::create(at(&store, &onelogin), &duplicate, false)
        .await
        .is_err());
    check("a refused duplicate").await;

    let patch_active = |who: &TokenOwner, id: &str, active: bool| {
        let (store, who, id) = (store.clone(), who.clone(), id.to_owned());
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": active}]});
        async move {
            let change = Change {
                id: &id,
                if_match: None,
                with_related: false,
            };
            User::patch(at(&store, &who), &change, &body).await.unwrap();
        }
    };
    patch_active(&onelogin, &ada, false).await;
    check("PATCH active=false").await;
    patch_active(&onelogin, &ada, false).await;
    check("PATCH active=false again").await;
    patch_active(&onelogin, &cy, true).await;
    check("PATCH active=true").await;
    // Okta changes a user OneLogin created: the user stays OneLogin's.
    let change = Change {
        id: &bob,
        if_match: None,
        with_related: false,
    };
    User::replace(
        at(&store, &okta),
        &change,
        &json!({"userName": "bob", "active": false}),
    )
    .await
    .unwrap();
    check("PUT active=false by another integration").await;

    let members = json!([{"value": ada}, {"value": bob}, {"value": dee}]);
    let group = |who: &TokenOwner, name: &str, members: &serde_json::Value| {
        let (store, who) = (store.clone(), who.clone());
        let body = json!({"displayName": name, "members": members});
        async move {
            Group::create(at(&store, &who), &body, false)
                .await
                .unwrap()
                .meta
                .id
        }
    };
    let staff = group(&onelogin, "Staff", &members).await;
    let admins = group(&okta, "Admins", &members).await;
    group(&hank, "Globex", &json!([{"value": hank_id}])).await;
    check("groups created").await;

    User::delete(at(&store, &onelogin), &ada, None)
        .await
        .unwrap();
    check("DELETE keeping a record").await;
    User::delete(at(&store, &okta), &eve, None).await.unwrap();
    check("DELETE erasing").await;
    // OneLogin deletes a user Okta created: counted apart, as OneLogin's deletion.
    User::delete(at(&store, &onelogin), &dee, None)
        .await
        .unwrap();
    check("DELETE of another integration's user").await;
    assert!(User::delete(at(&store, &onelogin), &ada, None)
        .await
        .is_err());
    check("DELETE of a deleted user").await;
    ada = create(&onelogin, "ada", true).await;
    check("recreated").await;
    let change = Change {
        id: &staff,
        if_match: None,
        with_related: false,
    };
    let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": ada}, {"value": cy}]},
                       {"op": "replace", "path": "displayName", "value": "All staff"}]});
    Group::patch(at(&store, &onelogin), &change, &add)
        .await
        .unwrap();
    check("group PATCH").await;
    Group::delete(at(&store, &onelogin), &staff, None)
        .await
        .unwrap();
    Group::delete(at(&store, &okta), &admins, None)
        .await
        .unwrap();
    check("groups deleted in both modes").await;

    let figures = store.dashboard_figures(&acme, now).await.unwrap();
    let of = |kind: &str| {
        let i = figures
            .integrations
            .iter()
            .find(|i| i.kind == kind)
            .unwrap();
        (i.users_active, i.users_deactivated, i.users_deleted)
    };
    assert_eq!(
        (figures.users, figures.groups, figures.deleted_users),
        (3, 0, 2)
    );
    assert_eq!(
        of("onelogin"),
        (2, 1, 2),
        "ada (again) and cy; bob; ada and dee deleted"
    );
    assert_eq!(of("okta"), (0, 0, 0), "dee deleted by OneLogin, eve erased");
    let figures = store.dashboard_figures(&globex, now).await.unwrap();
    assert_eq!(
        (figures.users, figures.groups, figures.deleted_users),
        (2, 1, 0)
    );

    let request = |who: &TokenOwner, at: i64, status: u16| RequestEntry {
        organisation_id: who.organisation_id.clone(),
        integration_id: who.integration_id.clone(),
        at,
        method: "PUT".into(),
        path: "/scimapi/Users/x".into(),
        status,
        resource_type: None,
        resource_id: None,
        duration_us: 1,
        error: (status >= 400).then(|| format!("failed at {at}")),
        request_body: None,
        request_id: None,
    };
    store
        .insert_requests(vec![
            request(&onelogin, now - 31 * DAY, 500),
            request(&onelogin, now - 31 * DAY + 1, 200),
            request(&okta, now - 26 * 60 * 60 * 1000, 404),
            request(&okta, now - 2 * 60 * 60 * 1000, 200),
            request(&onelogin, now - 1000, 409),
            request(&onelogin, now - 10, 200),
            request(&hank, now - 5, 400),
        ])
        .await
        .unwrap();
    store
        .insert_requests(vec![request(&onelogin, now, 200), request(&okta, now, 201)])
        .await
        .unwrap();
    check("requests logged").await;
    let figures = store.dashboard_figures(&acme, now).await.unwrap();
    let onelogin_figures = figures
        .integrations
        .iter()
        .find(|i| i.kind == "onelogin")
        .unwrap();
    assert_eq!(
        (onelogin_figures.requests, onelogin_figures.failures),
        (3, 1)
    );
    assert_eq!(
        onelogin_figures.last_error,
        Some((now - 1000, format!("failed at {}", now - 1000)))
    );
    assert_eq!(store.prune_requests(now - 30 * DAY).await.unwrap(), 2);
    check("log pruned").await;
    let buckets: i64 = store
        .read(move |tx| {
            Box::pin(async move {
                stmt("SELECT COUNT(*) FROM scim_request_counts WHERE hour < $1")
                    .bind(now - 30 * DAY)
                    .fetch_scalar(tx)
                    .await
            })
        })
        .await
        .unwrap();
    assert_eq!(buckets, 0, "the pruned hours' counts are gone");
    // An erasing DELETE clears the errors of the user's requests, the latest failure's too.
    let kept = create(&okta, "kept", true).await;
    store
        .insert_requests(vec![RequestEntry {
            resource_id: Some(kept.clone()),
            ..request(&okta, now, 422)
        }])
        .await
        .unwrap();
    User::delete(at(&store, &okta), &kept, None).await.unwrap();
    check("erased after a failure").await;
}

#[tokio::test]
async fn kept_counts_stay_exact_through_provisioning_and_the_log() {
    let (_dir, store, _, _) = store().await;
    kept_counts_stay_exact(store).await;
}

#[tokio::test]
#[ignore = "needs TEST_POSTGRES_URL; scripts/test runs it against PostgreSQL"]
async fn kept_counts_stay_exact_through_provisioning_and_the_log_on_postgres() {
    let (store, database) = postgres_store().await;
    kept_counts_stay_exact(store.clone()).await;
    database.drop(store).await;
}

/// Counts of a retired token written by two instances out of order: every request counts,
/// and the newest one's address and user agent stay.
async fn retired_token_counts_keep_the_newest_use(store: Store) {
    let (store, org, integration) = with_organisation(store).await;
    let id = integration.clone();
    let old_hash: String = store
        .read(move |tx| {
            Box::pin(async move {
                stmt("SELECT token_hash FROM directory_integrations WHERE id = $1")
                    .bind(&id)
                    .fetch_scalar(tx)
                    .await
            })
        })
        .await
        .unwrap();
    crate::integrations::reset_token(&store, &org, IntegrationKind::OneLogin, &Actor::Operator)
        .await
        .unwrap();
    let used = |count, last_at, address: &str| crate::integrations::RetiredTokenUse {
        token_hash: old_hash.clone(),
        count,
        last_at,
        address: Some(address.into()),
        user_agent: Some(format!("IdP at {address}")),
    };
    store
        .record_retired_token_uses(vec![used(3, 2_000, "198.51.100.2")])
        .await
        .unwrap();
    store
        .record_retired_token_uses(vec![used(2, 1_000, "198.51.100.1")])
        .await
        .unwrap();
    let stale = store.stale_token_use(&integration).await.unwrap().unwrap();
    assert_eq!(
        (stale.requests, stale.last_at, stale.last_address.as_deref()),
        (5, 2_000, Some("198.51.100.2"))
    );
    assert_eq!(
        stale.last_user_agent.as_deref(),
        Some("IdP at 198.51.100.2")
    );
    // A second reset retires the current token too; both count for the integration.
    crate::integrations::reset_token(&store, &org, IntegrationKind::OneLogin, &Actor::Operator)
        .await
        .unwrap();
    assert_eq!(store.prune_retired_tokens(0).await.unwrap(), 0);
    assert_eq!(store.prune_retired_tokens(i64::MAX).await.unwrap(), 2);
    assert_eq!(store.stale_token_use(&integration).await.unwrap(), None);
}

#[tokio::test]
async fn retired_token_counts_keep_the_newest_use_of_each_token() {
    let (_dir, store, _, _) = store().await;
    retired_token_counts_keep_the_newest_use(store).await;
}

#[tokio::test]
#[ignore = "needs TEST_POSTGRES_URL; scripts/test runs it against PostgreSQL"]
async fn retired_token_counts_keep_the_newest_use_of_each_token_on_postgres() {
    let (store, database) = postgres_store().await;
    retired_token_counts_keep_the_newest_use(store.clone()).await;
    database.drop(store).await;
}

/// The change history is written by the requests that ask for it, and pruned with the
/// activity log.
async fn change_history_goes_with_the_activity_log(store: Store) {
    let (store, org, integration) = with_organisation(store).await;
    let doc = |name: &str| UserDoc::from_request(&json!({ "userName": name }));
    store
        .insert_user(&org, &integration, "u-quiet", &doc("quiet").unwrap(), 1_000)
        .await
        .unwrap();
    deadline::run(Duration::from_secs(30), async {
        deadline::keep_history(Some("req-1".into()));
        store
            .insert_user(&org, &integration, "u-1", &doc("ada").unwrap(), 1_000)
            .await
            .unwrap();
    })
    .await
    .unwrap();
    let history = crate::history::user_history(&store, &org, "u-1")
        .await
        .unwrap();
    assert_eq!(
        history
            .iter()
            .map(|e| (e.action, e.request_id.as_deref(), e.by.as_deref()))
            .collect::<Vec<_>>(),
        [(
            crate::history::Action::Created,
            Some("req-1"),
            Some("onelogin")
        )]
    );
    assert_eq!(
        crate::history::user_history(&store, &org, "u-quiet")
            .await
            .unwrap(),
        [],
        "a write outside a request that asks keeps no history"
    );
    store.prune_requests(1_000).await.unwrap();
    assert_eq!(
        crate::history::user_history(&store, &org, "u-1")
            .await
            .unwrap()
            .len(),
        1
    );
    store.prune_requests(1_001).await.unwrap();
    assert_eq!(
        crate::history::user_history(&store, &org, "u-1")
            .await
            .unwrap(),
        []
    );
}

#[tokio::test]
async fn change_history_is_pruned_with_the_activity_log() {
    let (_dir, store, _, _) = store().await;
    change_history_goes_with_the_activity_log(store).await;
}

#[tokio::test]
#[ignore = "needs TEST_POSTGRES_URL; scripts/test runs it against PostgreSQL"]
async fn change_history_is_pruned_with_the_activity_log_on_postgres() {
    let (store, database) = postgres_store().await;
    change_history_goes_with_the_activity_log(store.clone()).await;
    database.drop(store).await;
}
