//! The service under faults and hostile clients, over real TCP (`wabill_server::serve_on`) on a
//! real store: a full SQLite disk and dropped PostgreSQL connections answer `503
//! store_unavailable` while they last and are recovered from without a restart, losing and
//! doubling nothing; slow and idle connections are closed after their timeouts; connections
//! beyond the bound wait; a key over its rate gets `429 rate_limited`.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wabill_rating::Tariff;
use wabill_server::limits::{Limits, RateLimit};
use wabill_server::{hash_key, Engine, ServeConfig};
use wabill_store::{ChargeFilter, NewApiKey, PgStore, Role, SqliteStore, Store};

const ADMIN: &str = "admin-key-faults";

/// A running service and how to stop it.
struct Running {
    addr: String,
    engine: Arc<Engine>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

async fn start(store: Arc<dyn Store>, limits: Limits, rate: Option<RateLimit>) -> Running {
    store
        .create_key(&NewApiKey {
            name: "admin".into(),
            role: Role::Admin,
            tenant_wabas: vec![],
            key_hash: hash_key(ADMIN),
        })
        .await
        .unwrap();
    let engine = Engine::new(store, Arc::new(Tariff::bundled()), Default::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = ServeConfig::new(listener.local_addr().unwrap());
    config.limits = limits;
    config.rate_limit = rate;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(wabill_server::serve_on(
        listener,
        engine.clone(),
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        addr,
        engine,
        stop: Some(stop),
        task: Some(task),
    }
}

/// One request on its own connection: status, head, body.
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .expect("an answer")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn events(from: usize, to: usize) -> String {
    let mut out = String::from(
        r#"{"kind":"account","waba":"W1","timezone":"UTC","currency":"USD","primary_country":"BR"}"#,
    );
    out.push('\n');
    for i in from..to {
        let (h, m) = (10 + i / 3600 % 10, i / 60 % 60);
        let s = i % 60;
        out.push_str(&format!(
            r#"{{"kind":"outbound","id":"wamid.f{i:05}","at":"2025-11-03T{h:02}:{m:02}:{s:02}Z","waba":"W1","phone":"15550001111","user":"55119{i:08}","type":"template","category":"marketing"}}"#
        ));
        out.push('\n');
    }
    out
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Every charge stored, by id: each message once.
async fn charge_ids(engine: &Engine) -> Vec<String> {
    let rows = engine
        .store()
        .charges(&ChargeFilter {
            limit: 100_000,
            ..ChargeFilter::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<String> = rows.into_iter().map(|c| c.id).collect();
    ids.sort();
    ids
}

/// The answers while the store cannot take writes, and after, with the same batch.
async fn refused_while_down_then_taken(s: &Running, batch: &str, down: bool) -> serde_json::Value {
    let (status, head, body) = http(&s.addr, "POST", "/v1/events", ADMIN, batch).await;
    if down {
        assert_eq!(status, 503, "{body}");
        assert_eq!(json(&body)["error"]["code"], "store_unavailable");
        assert!(head.contains("retry-after: 1"), "{head}");
        // Live, not ready.
        assert_eq!(http(&s.addr, "GET", "/healthz", "", "").await.0, 200);
        let (status, head, body) = http(&s.addr, "GET", "/readyz", "", "").await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(json(&body)["error"]["code"], "store_unavailable");
        assert!(head.contains("retry-after"), "{head}");
        serde_json::Value::Null
    } else {
        assert_eq!(status, 200, "{body}");
        json(&body)
    }
}

#[tokio::test]
async fn a_full_sqlite_disk_answers_503_then_writes_resume_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(
        SqliteStore::open(dir.path().join("wabill.sqlite"))
            .await
            .unwrap(),
    );
    let store: Arc<dyn Store> = sqlite.clone();
    let s = start(store, Limits::default(), None).await;
    let (status, _, body) = http(&s.addr, "POST", "/v1/events", ADMIN, &events(0, 100)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(http(&s.addr, "GET", "/readyz", "", "").await.0, 200);

    // The disk is full: no page more.
    sqlite.limit_pages(Some(1)).await.unwrap();
    tokio::time::sleep(wabill_server::health::READINESS_TTL).await;
    let batch = events(100, 3_000);
    for _ in 0..3 {
        refused_while_down_then_taken(&s, &batch, true).await;
    }
    // Space is back: the same service takes the batch, once.
    sqlite.limit_pages(None).await.unwrap();
    tokio::time::sleep(wabill_server::health::READINESS_TTL).await;
    assert_eq!(http(&s.addr, "GET", "/readyz", "", "").await.0, 200);
    let first = refused_while_down_then_taken(&s, &batch, false).await;
    assert_eq!(first["stored"], 2_900, "{first}");
    let again = refused_while_down_then_taken(&s, &batch, false).await;
    assert_eq!(
        (again["stored"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(2_901)),
        "{again}"
    );
    s.engine.settle().await.unwrap();
    assert_eq!(s.engine.store().max_seq().await.unwrap(), 3_001);
    let ids = charge_ids(&s.engine).await;
    let expected: Vec<String> = (0..3_000).map(|i| format!("wamid.f{i:05}")).collect();
    assert_eq!(ids, expected);
    s.stop().await;
}

#[tokio::test]
async fn dropped_postgres_connections_answer_503_while_refused_then_reconnect() {
    let url = std::env::var("WABILL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    use sqlx::{Connection, Executor};
    let mut admin = match sqlx::PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_some() => panic!("PostgreSQL is required in CI: {e}"),
        Err(e) => {
            eprintln!("SKIPPED postgres fault test: {e}");
            return;
        }
    };
    // A database of its own: connections are terminated by database.
    let db = format!("wabill_srv_faults_{}", std::process::id());
    let sql = |q: String| q;
    admin
        .execute(sql(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).as_str())
        .await
        .unwrap();
    admin
        .execute(sql(format!("CREATE DATABASE {db}")).as_str())
        .await
        .unwrap();
    let db_url = format!("{}/{db}", url.rsplit_once('/').unwrap().0);
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&db_url).await.unwrap());
    let s = start(store, Limits::default(), None).await;
    let kill = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    );
    let (status, _, body) = http(&s.addr, "POST", "/v1/events", ADMIN, &events(0, 100)).await;
    assert_eq!(status, 200, "{body}");
    // Every connection dropped once: the next request is served on a new one.
    admin.execute(kill.as_str()).await.unwrap();
    let batch = events(100, 200);
    let r = refused_while_down_then_taken(&s, &batch, false).await;
    assert_eq!(r["stored"], 100, "{r}");
    // Dropped and refused for a while: 503 while it lasts, then by itself again.
    admin
        .execute(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false").as_str())
        .await
        .unwrap();
    admin.execute(kill.as_str()).await.unwrap();
    tokio::time::sleep(wabill_server::health::READINESS_TTL).await;
    let batch = events(200, 300);
    refused_while_down_then_taken(&s, &batch, true).await;
    admin
        .execute(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true").as_str())
        .await
        .unwrap();
    tokio::time::sleep(wabill_server::health::READINESS_TTL).await;
    assert_eq!(http(&s.addr, "GET", "/readyz", "", "").await.0, 200);
    let r = refused_while_down_then_taken(&s, &batch, false).await;
    assert_eq!(r["stored"], 100, "{r}");
    s.engine.settle().await.unwrap();
    assert_eq!(s.engine.store().max_seq().await.unwrap(), 301);
    let expected: Vec<String> = (0..300).map(|i| format!("wamid.f{i:05}")).collect();
    assert_eq!(charge_ids(&s.engine).await, expected);
    s.stop().await;
    admin
        .execute(format!("DROP DATABASE {db} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

async fn sqlite_running(limits: Limits, rate: Option<RateLimit>) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("wabill.sqlite"))
        .await
        .unwrap();
    (start(Arc::new(store), limits, rate).await, dir)
}

/// How long until the server closes `s` (reads return 0 or fail), at most `within`.
async fn closed_after(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((t + within).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_after_their_timeouts() {
    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        max_connections: 100,
    };
    let (s, _dir) = sqlite_running(limits, None).await;
    // Half a request line, then nothing: closed after the header timeout.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut c = TcpStream::connect(&s.addr).await.unwrap();
        c.write_all(b"GET /hea").await.unwrap();
        slow.push(c);
    }
    let started = Instant::now();
    for c in &mut slow {
        let left = Duration::from_secs(5).saturating_sub(started.elapsed());
        closed_after(c, left)
            .await
            .expect("a slow connection is closed");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // Nothing at all: closed after the idle timeout, not the header timeout.
    let mut silent = TcpStream::connect(&s.addr).await.unwrap();
    let took = closed_after(&mut silent, Duration::from_secs(5))
        .await
        .expect("closed");
    assert!(took >= Duration::from_millis(1_800), "{took:?}");

    // Kept alive after an answer: closed once idle for the idle timeout.
    let mut kept = TcpStream::connect(&s.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let took = closed_after(&mut kept, Duration::from_secs(5))
        .await
        .expect("closed");
    assert!(took >= Duration::from_millis(1_800), "{took:?}");

    // A body that does not come: 408 after the request timeout, and the connection closed.
    let mut body = TcpStream::connect(&s.addr).await.unwrap();
    body.write_all(
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Length: 1000\r\n\r\n{{\"kind\":"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let t = Instant::now();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), body.read_to_end(&mut raw))
        .await
        .expect("closed")
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(t.elapsed() >= Duration::from_millis(1_800));

    // The service still answers.
    assert_eq!(http(&s.addr, "GET", "/healthz", "", "").await.0, 200);
    s.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_until_one_closes() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let (s, _dir) = sqlite_running(limits, None).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut open = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..2 {
        let mut c = TcpStream::connect(&s.addr).await.unwrap();
        c.write_all(request).await.unwrap();
        let n = c.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        open.push(c);
    }
    // A third: connected by the kernel, but not served while two are open.
    let mut third = TcpStream::connect(&s.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf))
            .await
            .is_err(),
        "served beyond the bound"
    );
    drop(open.pop());
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    s.stop().await;
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_and_other_keys_do_not_notice() {
    // A token every two seconds, so that a slow machine does not refill one mid-test.
    let rate = RateLimit {
        per_second: 0.5,
        burst: 2,
    };
    let (s, _dir) = sqlite_running(Limits::default(), Some(rate)).await;
    let store = s.engine.store();
    for (name, waba) in [("w1", "W1"), ("w2", "W2")] {
        store
            .create_key(&NewApiKey {
                name: name.into(),
                role: Role::Reader,
                tenant_wabas: vec![waba.into()],
                key_hash: hash_key(&format!("key-{name}")),
            })
            .await
            .unwrap();
    }
    for _ in 0..2 {
        assert_eq!(
            http(&s.addr, "GET", "/v1/charges", "key-w1", "").await.0,
            200
        );
    }
    let (status, head, body) = http(&s.addr, "GET", "/v1/charges", "key-w1", "").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(json(&body)["error"]["code"], "rate_limited");
    assert!(
        head.contains("retry-after: 1\r\n") || head.contains("retry-after: 2\r\n"),
        "{head}"
    );
    assert!(!body.contains("W2") && !body.contains("w2"), "{body}");
    // Another tenant's key has its own allowance; a bad key is still 401, before any limit.
    assert_eq!(
        http(&s.addr, "GET", "/v1/charges", "key-w2", "").await.0,
        200
    );
    assert_eq!(http(&s.addr, "GET", "/v1/charges", "nope", "").await.0, 401);
    // Two seconds later the key has a token again.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(
        http(&s.addr, "GET", "/v1/charges", "key-w1", "").await.0,
        200
    );
    s.stop().await;
}
