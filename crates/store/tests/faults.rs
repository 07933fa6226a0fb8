//! Storage faults and recovery without a restart: a SQLite database that cannot grow (a full
//! disk, `PRAGMA max_page_count` at the pages in use) refuses writes with an error and nothing
//! of them stored, keeps answering reads, and takes writes again once it can grow.

use sqlx::{Connection, Executor, PgConnection};
use wabill_store::{NewEvent, PgStore, SqliteStore, Store};

fn outbound(i: usize) -> NewEvent {
    let id = format!("wamid.fault.{i:06}");
    let raw = format!(
        r#"{{"kind":"outbound","id":"{id}","waba":"W1","phone":"15550001111","user":"5511988887777","at":"2025-11-01T10:00:00Z","type":"template","category":"utility","pad":"{}"}}"#,
        "x".repeat(400)
    );
    NewEvent::outbound(
        id,
        1_761_991_200_000 + i as i64,
        "W1",
        "15550001111",
        "5511988887777",
        raw,
    )
}

#[tokio::test]
async fn a_full_disk_fails_writes_until_space_is_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("wabill.sqlite"))
        .await
        .unwrap();
    let first: Vec<NewEvent> = (0..50).map(outbound).collect();
    store.append_events(&first).await.unwrap();
    // No room for another page.
    store.limit_pages(Some(1)).await.unwrap();
    let more: Vec<NewEvent> = (50..2_050).map(outbound).collect();
    for _ in 0..3 {
        let e = store.append_events(&more).await.unwrap_err().to_string();
        assert!(e.contains("full"), "{e}");
        // Reads go on; readiness says why writes do not.
        assert_eq!(store.max_seq().await.unwrap(), 50);
        let why = store.health().await.unwrap_err().to_string();
        assert!(why.contains("full"), "{why}");
    }
    store.limit_pages(None).await.unwrap();
    store.health().await.unwrap();
    let r = store.append_events(&more).await.unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 2_050, "{r:?}");
    // Again: every event once.
    let all: Vec<NewEvent> = (0..2_050).map(outbound).collect();
    store.append_events(&all).await.unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 2_050);
}

/// A PostgreSQL database of this test alone (connections are terminated by database), or
/// None outside CI when the server cannot be reached.
async fn fresh_pg_database(name: &str) -> Option<(PgConnection, String, String)> {
    let url = std::env::var("WABILL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = match PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_some() => panic!("PostgreSQL is required in CI: {e}"),
        Err(e) => {
            eprintln!("SKIPPED postgres fault test: {e}");
            return None;
        }
    };
    let db = format!("{name}_{}", std::process::id());
    admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await
        .unwrap();
    let base = url.rsplit_once('/').unwrap().0;
    Some((admin, db.clone(), format!("{base}/{db}")))
}

#[tokio::test]
async fn postgres_connections_dropped_fail_writes_while_it_lasts_then_reconnect() {
    let Some((mut admin, db, url)) = fresh_pg_database("wabill_store_faults").await else {
        return;
    };
    let store = PgStore::open(&url).await.unwrap();
    let first: Vec<NewEvent> = (0..50).map(outbound).collect();
    store.append_events(&first).await.unwrap();
    // Every connection of the store dropped, once: the pool replaces them.
    let kill = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    );
    admin.execute(kill.as_str()).await.unwrap();
    let more: Vec<NewEvent> = (50..100).map(outbound).collect();
    store.append_events(&more).await.unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 100);
    // Dropped and refused for a while: writes and readiness fail, then resume by themselves.
    admin
        .execute(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false").as_str())
        .await
        .unwrap();
    admin.execute(kill.as_str()).await.unwrap();
    let later: Vec<NewEvent> = (100..150).map(outbound).collect();
    assert!(store.append_events(&later).await.is_err());
    assert!(store.health().await.is_err());
    admin
        .execute(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true").as_str())
        .await
        .unwrap();
    store.health().await.unwrap();
    store.append_events(&later).await.unwrap();
    let all: Vec<NewEvent> = (0..150).map(outbound).collect();
    let again = store.append_events(&all).await.unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 150, "{again:?}");
    store.close().await.unwrap();
    admin
        .execute(format!("DROP DATABASE {db} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

/// A write dropped after any number of polls (so at any step: waiting for the writer, inside
/// its BEGIN, writing, committing) stores nothing it did not commit, and the next write is
/// taken: a BEGIN that ran for a write dropped before it could hold its transaction leaves the
/// connection inside one, which the next write must roll back rather than fail on.
#[tokio::test]
async fn a_write_dropped_at_any_poll_leaves_the_next_write_free() {
    use std::future::Future;
    use std::task::Poll;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("wabill.sqlite"))
        .await
        .unwrap();
    let mut next = 0;
    for polls in 1..60 {
        let batch: Vec<NewEvent> = (next..next + 3).map(outbound).collect();
        let mut write = Box::pin(store.append_events(&batch));
        let mut done = false;
        for _ in 0..polls {
            std::future::poll_fn(|cx| {
                done |= write.as_mut().poll(cx).is_ready();
                Poll::Ready(())
            })
            .await;
            if done {
                break;
            }
            // Let the database's worker thread and the runtime's other tasks move on.
            tokio::task::yield_now().await;
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        drop(write);
        let before = store.max_seq().await.unwrap();
        let one: Vec<NewEvent> = vec![outbound(next + 3)];
        store
            .append_events(&one)
            .await
            .unwrap_or_else(|e| panic!("after a write dropped at poll {polls}: {e}"));
        // The dropped write may have sent its COMMIT already, which then lands: its three
        // events once, or none of them.
        let after = store.max_seq().await.unwrap();
        assert!(
            after == before + 1 || after == before + 4,
            "poll {polls}: {before} then {after}"
        );
        next += 4;
    }
}

#[tokio::test]
async fn a_write_cancelled_half_way_is_rolled_back_and_the_next_one_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("wabill.sqlite"))
        .await
        .unwrap();
    let batch: Vec<NewEvent> = (0..20_000).map(outbound).collect();
    // Dropped after a moment, in the middle of its transaction (a request that timed out, a
    // client gone): nothing of it is stored, and the writer is free again.
    for wait_ms in [1, 5, 20] {
        let cut = tokio::time::timeout(
            std::time::Duration::from_millis(wait_ms),
            store.append_events(&batch),
        )
        .await;
        if cut.is_ok() {
            // Fast enough to finish: the test proves nothing more here.
            break;
        }
        assert_eq!(store.max_seq().await.unwrap(), 0);
    }
    let small: Vec<NewEvent> = (0..10).map(outbound).collect();
    store.append_events(&small).await.unwrap();
    store.append_events(&batch).await.unwrap();
    // The ten are among the batch's events: every event once.
    assert_eq!(store.max_seq().await.unwrap(), 20_000);
    let again = store.append_events(&batch).await.unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 20_000, "{again:?}");
}
