//! What the server's test files share: PostgreSQL schemas that do not outlive their test.

use sqlx::{Connection, Executor};

/// The PostgreSQL server of the tests (`WABILL_TEST_PG`, default the machine's).
pub fn pg_url() -> String {
    std::env::var("WABILL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A test's schema, dropped when this is dropped (the test's end, passed or failed), so that a
/// run leaves nothing behind. Its name ends in the process id; creating one also drops the
/// schemas of test processes no longer running (a run killed before its guards dropped).
pub struct PgSchema {
    pub url: String,
    pub name: String,
}

impl PgSchema {
    /// `prefix_test_pid`, after sweeping what dead runs left.
    pub async fn new(prefix: &str, test: &str) -> PgSchema {
        let url = pg_url();
        sweep(&url, prefix).await;
        PgSchema {
            name: format!("{prefix}_{test}_{}", std::process::id()),
            url,
        }
    }
}

async fn sweep(url: &str, prefix: &str) {
    let Ok(mut c) = sqlx::PgConnection::connect(url).await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)")
            .bind(format!("{prefix}_"))
            .fetch_all(&mut c)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name.rsplit('_').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if pid.is_some() && !alive {
            let _ = c
                .execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
                .await;
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // A thread and a runtime of its own: a drop may run inside the test's runtime, which
        // must not be blocked on.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                    // Never wait long on a connection of the test still holding a lock.
                    let _ = c.execute("SET lock_timeout = '5s'").await;
                    let _ = c
                        .execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
                        .await;
                }
            })
        })
        .join();
    }
}
