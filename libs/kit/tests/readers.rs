//! On SQLite a service has one writer connection; reads outside a write go
//! to `db::readers`, which must neither wait for a write in progress nor
//! see it before it commits, and must refuse to write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sqlx::{Acquire, Executor};

#[tokio::test]
async fn sqlite_reads_run_beside_a_write_in_progress_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("svc.db").display());
    let pool = kefu_kit::db::connect(&url, 1).await.unwrap();
    pool.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").await.unwrap();
    pool.execute("INSERT INTO t (v) VALUES ('committed')").await.unwrap();
    let reads = kefu_kit::db::readers(&pool);

    // The one writer connection is busy in a transaction that has not committed.
    let mut writer = pool.acquire().await.unwrap();
    let mut tx = writer.begin().await.unwrap();
    tx.execute("INSERT INTO t (v) VALUES ('uncommitted')").await.unwrap();

    let seen: Vec<String> = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar("SELECT v FROM t ORDER BY id").fetch_all(&reads),
    )
    .await
    .expect("a read does not wait for the write in progress")
    .unwrap();
    assert_eq!(seen, ["committed"], "only what is committed");
    tx.commit().await.unwrap();
    drop(writer);
    let seen: Vec<String> = sqlx::query_scalar("SELECT v FROM t ORDER BY id").fetch_all(&reads).await.unwrap();
    assert_eq!(seen, ["committed", "uncommitted"], "and everything once it is");

    let write = reads.execute("INSERT INTO t (v) VALUES ('through a reader')").await;
    assert!(write.is_err(), "readers cannot write");
}
