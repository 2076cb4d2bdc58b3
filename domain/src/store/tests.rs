//! Tests of the store's core on a real SQLite file (and, for the deadline on PostgreSQL, a
//! real PostgreSQL database when `TEST_POSTGRES_URL` is set): grouped writes, deadlines,
//! lanes, and the order lists come back in.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use scim::user::UserDoc;
use serde_json::json;

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

async fn with_organisation(store: Store) -> (Store, String, String) {
    let org = store
        .find_or_create_organisation(&uuid::Uuid::new_v4().to_string(), "Org", 1)
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
        organisation_id: org.clone(),
        id: "b".into(),
        if_match: None,
        integration_id: integration.clone(),
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
    let server = std::env::var("TEST_POSTGRES_URL").expect("TEST_POSTGRES_URL");
    let database = format!("scimtest_{}", uuid::Uuid::new_v4().simple());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
        .await
        .unwrap();
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {database}").as_str())
        .await
        .unwrap();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    let store = Store::connect(&format!("{base}/{database}")).await.unwrap();
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
    store.close().await;
    sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE {database} WITH (FORCE)").as_str(),
    )
    .await
    .unwrap();
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
