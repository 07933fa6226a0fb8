//! The web console and its calculator, on the real binary: `wabill serve` over real HTTP, its
//! `POST /v1/estimate` answering exactly what `wabill estimate --format json` prints for the same
//! input, the switch that turns the calculator off, the console's files and security headers;
//! and the calculator page in a real browser (headless Chromium through chromedriver), whose
//! total must be `wabill estimate`'s and must come back from the URL alone.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wabill() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wabill"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wabill-console-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange (`Connection: close`, no chunked bodies): status, head, body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no complete answer: {text:?}")))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {head:?}")))?;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    Ok((status, head.to_string(), rest.to_string()))
}

/// The value of header `name` in an answer's head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Server {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join("serve.log");
        let db = dir.join("console.sqlite");
        let child = wabill()
            .arg("serve")
            .args(["--db", db.to_str().unwrap(), "--listen", &addr])
            .args(args)
            .env("WABILL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(http(&server.addr, "GET", "/healthz", ""), Ok((200, _, _))) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "wabill serve did not answer on {}: {}",
            server.addr,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wabill estimate` with `args`, its traffic read from `input` (the request document itself:
/// `--input` reads the `traffic` of a JSON object), printed as JSON.
fn cli_estimate(dir: &Path, request: &Value, args: &[&str]) -> String {
    let file = dir.join("request.json");
    std::fs::write(&file, request.to_string()).unwrap();
    let out = wabill()
        .arg("estimate")
        .args(args)
        .args(["--format", "json", "--input", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A request of every kind of option, and the same options as `wabill estimate` flags.
fn sample() -> (Value, Vec<&'static str>) {
    let request = serde_json::json!({
        "month": "2026-11", "currency": "USD", "timezone": "America/Sao_Paulo", "phones": 2,
        "primary_country": "BR", "auth_international": true,
        "utility_in_window": "25%", "entry_point_share": "10%", "compare": true,
        "traffic": [
            {"market": "Brazil", "category": "marketing", "messages": 1200},
            {"market": "Brazil", "category": "utility", "messages": 800},
            {"country": "IN", "category": "authentication", "messages": 500},
            {"market": "Brazil", "category": "service", "messages": 300},
        ],
    });
    let args = vec![
        "--month",
        "2026-11",
        "--currency",
        "USD",
        "--timezone",
        "America/Sao_Paulo",
        "--phones",
        "2",
        "--primary-country",
        "BR",
        "--auth-international",
        "--utility-in-window",
        "25%",
        "--entry-point-share",
        "10%",
        "--compare",
    ];
    (request, args)
}

#[test]
fn the_estimate_route_answers_what_wabill_estimate_prints() {
    let dir = tmpdir("route");
    let server = Server::start(&dir, &[]);
    let (request, args) = sample();
    let (status, head, body) =
        http(&server.addr, "POST", "/v1/estimate", &request.to_string()).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(header(&head, "content-type")
        .unwrap()
        .starts_with("application/json"));
    let printed = cli_estimate(&dir, &request, &args);
    assert_eq!(
        body, printed,
        "the service's estimate differs from the CLI's"
    );
    let report: Value = serde_json::from_str(&body).unwrap();
    assert!(
        report["compare"]["totals"][0]["amount"].is_string(),
        "{report}"
    );

    // Without compare, and with the defaults, the same holds.
    let plain = serde_json::json!({"month": "2026-11",
        "traffic": [{"market": "Brazil", "category": "marketing", "messages": 1000}]});
    let (status, _, body) = http(&server.addr, "POST", "/v1/estimate", &plain.to_string()).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, cli_estimate(&dir, &plain, &["--month", "2026-11"]));

    // What the calculator can be asked: the markets of the rate data.
    let (status, _, body) = http(&server.addr, "GET", "/v1/estimate", "").unwrap();
    assert_eq!(status, 200, "{body}");
    let options: Value = serde_json::from_str(&body).unwrap();
    assert!(options["markets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "Brazil"));
    assert!(options["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "USD"));
}

#[test]
fn estimate_errors_name_their_field_and_bounds_hold() {
    let dir = tmpdir("errors");
    let server = Server::start(&dir, &[]);
    for (body, status, code, says) in [
        ("{", 400, "invalid_body", "not JSON"),
        (
            r#"{"month":"2026-11","traffic":[{"market":"Atlantis","category":"marketing","messages":1}]}"#,
            400,
            "invalid_request",
            "[unknown_market]",
        ),
        (
            r#"{"month":"2026-11","phones":0,"traffic":[]}"#,
            400,
            "invalid_request",
            "phones",
        ),
        (
            r#"{"month":"2026-11","currency":"XXX","traffic":[{"market":"Brazil","category":"marketing","messages":1}]}"#,
            422,
            "missing_rate",
            "XXX",
        ),
    ] {
        let (got, _, answer) = http(&server.addr, "POST", "/v1/estimate", body).unwrap();
        assert_eq!(got, status, "{body}: {answer}");
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {answer}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    // A body above the calculator's own bound is refused before it is read as JSON.
    let big = format!(
        r#"{{"month":"2026-11","traffic":[],"pad":"{}"}}"#,
        "x".repeat(wabill_server::handlers::estimate::MAX_ESTIMATE_BODY_BYTES)
    );
    let (got, _, answer) = http(&server.addr, "POST", "/v1/estimate", &big).unwrap();
    assert_eq!(got, 413, "{answer}");
}

#[test]
fn the_calculator_can_be_turned_off() {
    let dir = tmpdir("off");
    let server = Server::start(&dir, &["--calculator", "false"]);
    let (request, _) = sample();
    let (status, _, body) =
        http(&server.addr, "POST", "/v1/estimate", &request.to_string()).unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("not_found") && body.contains("calculator"),
        "{body}"
    );
    let (status, _, _) = http(&server.addr, "GET", "/v1/estimate", "").unwrap();
    assert_eq!(status, 404);
}

#[test]
fn the_console_is_served_from_the_binary_with_its_security_headers() {
    let dir = tmpdir("files");
    let server = Server::start(&dir, &[]);
    let (status, head, page) = http(&server.addr, "GET", "/", "").unwrap();
    assert_eq!(status, 200);
    assert!(header(&head, "content-type")
        .unwrap()
        .starts_with("text/html"));
    let csp = header(&head, "content-security-policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
    // No inline script: the page loads its script as a file, which is served.
    assert!(
        page.contains(r#"<script src="/console/app.js" defer></script>"#),
        "{page}"
    );
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(!page.contains("style="), "no inline style under the CSP");
    for (path, kind) in [
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let (status, head, body) = http(&server.addr, "GET", path, "").unwrap();
        assert_eq!(status, 200, "{path}");
        assert!(
            header(&head, "content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert!(header(&head, "content-security-policy").is_some(), "{path}");
        assert!(!body.is_empty(), "{path}");
    }
    // Nothing is fetched from another origin.
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
}

/// A process killed and reaped when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium and chromedriver (Debian's `chromium`, `chromium-driver`), or `None` when either is
/// missing outside CI; under `CI=true` a missing browser fails the test (`.ci/run` installs it).
fn browser() -> Option<(&'static str, &'static str)> {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if present {
        return Some((CHROMIUM, CHROMEDRIVER));
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: {CHROMIUM} and {CHROMEDRIVER} are required (apt-get install chromium chromium-driver)"
    );
    eprintln!("SKIPPED: the browser test needs {CHROMIUM} and {CHROMEDRIVER}");
    None
}

/// chromedriver on a free port, once it listens.
fn chromedriver(driver: &str, dir: &Path) -> (Reaped, String) {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("chromedriver.log")).unwrap())
        .spawn()
        .unwrap();
    let reaped = Reaped(child);
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        // It keeps connections open: being accepted is the sign it listens.
        if TcpStream::connect(&addr).is_ok() {
            return (reaped, format!("http://{addr}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("chromedriver did not answer on {addr}");
}

/// The text of `selector` once it is not empty.
async fn text_when_shown(c: &fantoccini::Client, selector: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(el) = c.find(fantoccini::Locator::Css(selector)).await {
            let t = el.text().await.unwrap_or_default();
            if !t.trim().is_empty() {
                return t.trim().to_string();
            }
        }
        assert!(Instant::now() < deadline, "{selector} stayed empty");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The calculator in headless Chromium: a changed input, submitted with the keyboard, shows the
/// total `wabill estimate` prints for the same input; the page's URL alone, opened afresh,
/// shows it again; screenshots for the README (desktop and phone width).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calculator_in_a_browser_shows_wabill_estimates_total() {
    let Some((chromium, driver)) = browser() else {
        return;
    };
    let dir = tmpdir("browser");
    let key = reader_key(&dir);
    let server = Server::start(&dir, &[]);
    let (_driver, webdriver) = chromedriver(driver, &dir);
    let profile = dir.join("profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.display()),
                     "--window-size=1280,1400"],
        }),
    );
    let http = hyper_util::client::legacy::connect::HttpConnector::new();
    let c = fantoccini::ClientBuilder::new(http)
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("a WebDriver session of chromium");
    let result = drive(&c, &server.addr, &dir, &key).await;
    c.close().await.unwrap();
    result.unwrap();
}

/// A reader key of the test's database, as `wabill keys create` prints it.
fn reader_key(dir: &Path) -> String {
    let db = dir.join("console.sqlite");
    let out = wabill()
        .args(["keys", "create", "--name", "console", "--role", "reader"])
        .args(["--waba", "W1", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn drive(
    c: &fantoccini::Client,
    addr: &str,
    dir: &Path,
    key: &str,
) -> Result<(), fantoccini::error::CmdError> {
    use fantoccini::Locator::Css;
    // A shared estimate: every category, a country line, the shares, the comparison.
    let shared = "#/calculator?month=2026-11&currency=USD&tz=UTC&phones=2&uiw=25&eps=10&compare=1\
        &line=m,marketing,1200,Brazil&line=m,utility,8000,Brazil&line=c,authentication,5000,IN\
        &line=m,service,3000,Brazil";
    c.goto(&format!("http://{addr}/{shared}")).await?;
    // The calculator's first line, once the service's markets and currencies are in.
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Css("#f-currency option[value='USD']"))
        .await?;
    let first = text_when_shown(c, "#total-amount").await;
    let messages = c.find(Css("#lines tr:first-child .l-messages")).await?;
    messages.clear().await?;
    // Typed, then Enter: the form is submitted from the keyboard.
    messages.send_keys("25000\u{E007}").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let shown = loop {
        let now = text_when_shown(c, "#total-amount").await;
        if now != first {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the total did not change from {first}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let shown_before = text_when_shown(c, "#compare-amount").await;

    let request = serde_json::json!({"traffic": [
        {"market": "Brazil", "category": "marketing", "messages": 25000},
        {"market": "Brazil", "category": "utility", "messages": 8000},
        {"country": "IN", "category": "authentication", "messages": 5000},
        {"market": "Brazil", "category": "service", "messages": 3000}]});
    let flags = [
        "--month",
        "2026-11",
        "--phones",
        "2",
        "--utility-in-window",
        "25%",
        "--entry-point-share",
        "10%",
        "--compare",
    ];
    let printed = cli_estimate(dir, &request, &flags);
    let printed: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(
        shown,
        printed["estimate"]["totals"][0]["amount"].as_str().unwrap(),
        "the page's total is not wabill estimate's"
    );
    assert_eq!(
        shown_before,
        printed["compare"]["totals"][0]["amount"].as_str().unwrap(),
        "the page's previous-era total is not wabill estimate's"
    );
    let bars = c.find_all(Css("#chart svg rect.bar")).await?;
    assert!(
        bars.len() >= 8,
        "the era chart has its bars: {}",
        bars.len()
    );

    // The state is in the URL: opened afresh, the same estimate comes back.
    let url = c.current_url().await?;
    assert!(
        url.fragment().unwrap_or("").contains("messages") || url.as_str().contains("25000"),
        "the URL carries the state: {url}"
    );
    c.goto("about:blank").await?;
    c.goto(url.as_str()).await?;
    let again = text_when_shown(c, "#total-amount").await;
    assert_eq!(again, shown, "the shared URL does not give the same total");

    // The sign-in: a wrong key is refused and kept nowhere; a real one is kept for this
    // browser session only, and opens the keyed part of the bar.
    let stored = "return [sessionStorage.getItem('wabill.key'), localStorage.length];";
    let field = c.find(Css("#signin-key")).await?;
    field.send_keys("not-a-key\u{E007}").await?;
    let refused = text_when_shown(c, "#signin-status").await;
    assert!(refused.contains("refused"), "{refused}");
    assert_eq!(
        c.execute(stored, vec![]).await?,
        serde_json::json!([null, 0])
    );
    field.clear().await?;
    field.send_keys(&format!("{key}\u{E007}")).await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Css("#nav-keyed:not([hidden])"))
        .await?;
    assert_eq!(
        c.execute(stored, vec![]).await?,
        serde_json::json!([key, 0]),
        "the key is in sessionStorage, nothing in localStorage"
    );
    let who = text_when_shown(c, "#signedin-who").await;
    assert!(who.ends_with(&key[key.len() - 4..]), "{who}");
    c.find(Css("#signout")).await?.click().await?;
    assert_eq!(
        c.execute(stored, vec![]).await?,
        serde_json::json!([null, 0])
    );

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    // Tall enough for the whole result, its chart included.
    c.set_window_size(1280, 2000).await?;
    let png = c.screenshot().await?;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(shots.join("calculator.png"), png).unwrap();
    // At a phone's width the page still fits: nothing scrolls sideways but the tables.
    c.set_window_size(390, 1400).await?;
    let overflow = c
        .execute(
            "const w = document.documentElement.clientWidth; \
             const wide = [...document.querySelectorAll('body *')] \
               .filter((e) => e.getBoundingClientRect().right > w + 1 && !(e.parentElement && e.parentElement.closest('.scroll'))) \
               .map((e) => e.tagName + '#' + e.id + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right)); \
             return {width: w, inner: window.innerWidth, \
                     over: document.documentElement.scrollWidth - w, wide: wide.slice(0, 12)};",
            vec![],
        )
        .await?;
    assert_eq!(
        overflow["over"].as_i64(),
        Some(0),
        "the page overflows a phone's width: {overflow}"
    );
    std::fs::write(shots.join("calculator-phone.png"), c.screenshot().await?).unwrap();
    Ok(())
}

/// One HTTP/1.0 exchange with a key (the answer is never chunked, its end is the close):
/// status and body.
fn http_key(addr: &str, method: &str, path: &str, key: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a complete answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, rest.to_string())
}

/// A key of `role` of the test's database (`--waba` for reader keys).
fn key_of(dir: &Path, role: &str, waba: Option<&str>) -> String {
    let db = dir.join("console.sqlite");
    let mut cmd = wabill();
    cmd.args(["keys", "create", "--name", role, "--role", role])
        .args(["--db", db.to_str().unwrap()]);
    if let Some(w) = waba {
        cmd.args(["--waba", w]);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// An exact decimal string in 10⁻⁹ units.
fn nanos(s: &str) -> i128 {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= 9, "{s}");
    let n = whole.parse::<i128>().unwrap() * 1_000_000_000
        + format!("{frac:0<9}").parse::<i128>().unwrap();
    if neg {
        -n
    } else {
        n
    }
}

/// Every charge the key sees under `query`, through every page of `next`.
fn api_charges(addr: &str, key: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let (status, body) = http_key(
            addr,
            "GET",
            &format!("/v1/charges?limit=10000{query}{after}"),
            key,
            "",
        );
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        out.extend(v["charges"].as_array().unwrap().iter().cloned());
        match v["next"].as_str() {
            Some(n) => after = format!("&after={n}"),
            None => return out,
        }
    }
}

/// `/v1/usage` of `waba` for November 2026, DAILY by `dimension`, summed per UTC day:
/// (day, volume, cost in 10⁻⁹ units), the days with data only, in order.
fn api_usage_per_day(
    addr: &str,
    key: &str,
    waba: &str,
    dimension: &str,
) -> Vec<(String, u64, i128)> {
    let seconds = |t: &str| wabill_formats::time::parse_instant(t).unwrap() as u64 / 1000;
    let (start, end) = (
        seconds("2026-11-01T00:00:00Z"),
        seconds("2026-12-01T00:00:00Z"),
    );
    let (status, body) = http_key(
        addr,
        "GET",
        &format!("/v1/usage?waba={waba}&start={start}&end={end}&granularity=DAILY&dimensions={dimension}"),
        key,
        "",
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let mut days = std::collections::BTreeMap::<u64, (u64, i128)>::new();
    for p in v["data"][0]["data_points"].as_array().unwrap() {
        let day = p["start"].as_u64().unwrap();
        assert!((start..end).contains(&day), "{p}");
        let e = days.entry((day - start) / 86_400).or_default();
        e.0 += p["volume"].as_u64().unwrap();
        e.1 += nanos(p["cost"].as_str().unwrap());
    }
    days.into_iter()
        .filter(|(_, (v, _))| *v > 0)
        .map(|(d, (v, c))| (format!("2026-11-{:02}", d + 1), v, c))
        .collect()
}

/// The signed-in pages in headless Chromium, on a service fed with a generated stream of two
/// WABAs: the dashboard's figures per day are `/v1/usage`'s, by category and by country; the
/// charges explorer shows, page after page, exactly the API's rows and downloads all of them;
/// a reader key of W1 sees W1 only, in every view; screenshots for the README.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyed_pages_in_a_browser_show_the_apis_figures_within_the_keys_scope() {
    let Some((chromium, driver)) = browser() else {
        return;
    };
    let dir = tmpdir("keyed");
    let admin = key_of(&dir, "admin", None);
    let reader = key_of(&dir, "reader", Some("W1"));
    let server = Server::start(&dir, &[]);
    let stream = wabill()
        .args([
            "gen", "--seed", "7", "--events", "12000", "--wabas", "2", "--users", "300",
        ])
        .args(["--start", "2026-11-01", "--days", "20"])
        .output()
        .unwrap();
    assert_eq!(stream.status.code(), Some(0));
    let stream = String::from_utf8(stream.stdout).unwrap();
    let lines: Vec<&str> = stream.lines().collect();
    for batch in lines.chunks(2000) {
        let (status, body) = http_key(
            &server.addr,
            "POST",
            "/v1/events",
            &admin,
            &batch.join("\n"),
        );
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["rejected"], 0, "{body}");
    }
    // Re-rating brings the charges up to date after the acknowledgements: until its lag is 0.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, metrics) = http_key(&server.addr, "GET", "/metrics", &admin, "");
        assert_eq!(status, 200, "{metrics}");
        let lag = metrics
            .lines()
            .find_map(|l| l.strip_prefix("wabill_rerate_lag_events "))
            .expect("the re-rating lag metric");
        if lag.trim() == "0" {
            break;
        }
        assert!(Instant::now() < deadline, "re-rating stays behind: {lag}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = api_charges(&server.addr, &admin, "");
    let w1 = api_charges(&server.addr, &admin, "&waba=W1");
    assert!(
        w1.len() > 500 && all.len() > w1.len(),
        "{} of {}",
        w1.len(),
        all.len()
    );

    // Two tenants, one WABA each; the first with an included budget.
    for (tenant, waba, plan) in [
        (
            "t1",
            "W1",
            r#"{"effective_from": "2026-11-01", "licence_price": "10",
            "budget": {"per_agents": 10, "amount": "5", "currency": "USD"}}"#,
        ),
        (
            "t2",
            "W2",
            r#"{"effective_from": "2026-11-01", "licence_price": "10"}"#,
        ),
    ] {
        let setup = format!(
            r#"{{"tenant": {{"id": "{tenant}", "name": "{tenant}", "timezone": "UTC", "currency": "USD",
                "wabas": ["{waba}"]}},
              "agents": [{{"id": "a1", "name": "A"}}],
              "licences": [{{"id": "L1", "target": "all_agents", "from": "2026-11-01"}}],
              "plans": [{plan}]}}"#
        );
        let (status, body) = http_key(
            &server.addr,
            "PUT",
            &format!("/v1/tenants/{tenant}"),
            &admin,
            &setup,
        );
        assert!(status == 200 || status == 201, "{status}: {body}");
    }
    let (status, invoice) = http_key(
        &server.addr,
        "GET",
        "/v1/tenants/t1/invoices/2026-11",
        &admin,
        "",
    );
    assert_eq!(status, 200, "{invoice}");
    let invoice: Value = serde_json::from_str(&invoice).unwrap();
    let budget = invoice["budget"].clone();
    assert!(budget["included"].is_string(), "{invoice}");

    let (_driver, webdriver) = chromedriver(driver, &dir);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", dir.join("profile").display()),
                     "--window-size=1280,1400"],
        }),
    );
    let http = hyper_util::client::legacy::connect::HttpConnector::new();
    let c = fantoccini::ClientBuilder::new(http)
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("a WebDriver session of chromium");
    let result = drive_keyed(&c, &server.addr, &reader, &w1, &budget).await;
    c.close().await.unwrap();
    result.unwrap();
}

/// The rows of the dashboard's table: (day, volume, cost in 10⁻⁹ units).
async fn usage_rows(
    c: &fantoccini::Client,
) -> Result<Vec<(String, u64, i128)>, fantoccini::error::CmdError> {
    let rows = c
        .execute(
            "return [...document.querySelectorAll('#usage-days tr')].map((tr) => \
               [tr.dataset.day, tr.querySelector('.u-volume').textContent, \
                tr.querySelector('.u-cost').textContent]);",
            vec![],
        )
        .await?;
    Ok(rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_string(),
                r[1].as_str().unwrap().parse().unwrap(),
                nanos(r[2].as_str().unwrap()),
            )
        })
        .collect())
}

/// The text of `selector` once it contains `want`.
async fn wait_text(c: &fantoccini::Client, selector: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(el) = c.find(fantoccini::Locator::Css(selector)).await {
            let t = el.text().await.unwrap_or_default();
            if t.contains(want) {
                return t;
            }
            assert!(Instant::now() < deadline, "{selector}: {t:?}, not {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn drive_keyed(
    c: &fantoccini::Client,
    addr: &str,
    reader: &str,
    w1: &[Value],
    budget: &Value,
) -> Result<(), fantoccini::error::CmdError> {
    use fantoccini::Locator::Css;
    c.goto(&format!("http://{addr}/")).await?;
    let field = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Css("#signin-key"))
        .await?;
    field.send_keys(&format!("{reader}\u{E007}")).await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Css("#nav-keyed:not([hidden])"))
        .await?;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    // The dashboard, from the keyboard: the form filled and submitted with Enter.
    c.goto(&format!("http://{addr}/#/usage")).await?;
    let waba = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Css("#u-waba"))
        .await?;
    c.execute(
        "document.getElementById('u-month').value = '2026-11';",
        vec![],
    )
    .await?;
    waba.send_keys("W1\u{E007}").await?;
    wait_text(c, "#usage-status", "Shown").await;
    let mut seen = Vec::new();
    for (by, dimension) in [("category", "PRICING_CATEGORY"), ("country", "COUNTRY")] {
        c.goto(&format!(
            "http://{addr}/#/usage?waba=W1&month=2026-11&by={by}"
        ))
        .await?;
        c.refresh().await?;
        wait_text(c, "#usage-status", "Shown").await;
        let shown = usage_rows(c).await?;
        let expected = api_usage_per_day(addr, reader, "W1", dimension);
        assert!(expected.len() >= 10, "{expected:?}");
        assert_eq!(shown, expected, "the dashboard by {by} is not /v1/usage's");
        let total: i128 = expected.iter().map(|d| d.2).sum();
        let shown_total = c.find(Css("#usage-total-cost")).await?.text().await?;
        assert_eq!(nanos(&shown_total), total, "month to date");
        let bars = c.find_all(Css("#usage-cost-chart svg rect.bar")).await?;
        assert!(bars.len() > expected.len(), "stacked bars: {}", bars.len());
        seen.push(total);
    }
    assert_eq!(seen[0], seen[1], "the same month, however it is stacked");
    // The tenant's included budget beside the month to date; another tenant's is refused.
    c.goto(&format!(
        "http://{addr}/#/usage?waba=W1&month=2026-11&by=category&tenant=t1"
    ))
    .await?;
    c.refresh().await?;
    let line = wait_text(c, "#usage-budget", "included").await;
    let (used, included) = (
        budget["used"].as_str().unwrap(),
        budget["included"].as_str().unwrap(),
    );
    assert!(
        line.contains(&format!("{used} USD used of {included} USD included")),
        "{line}"
    );
    c.set_window_size(1280, 1800).await?;
    std::fs::write(shots.join("usage.png"), c.screenshot().await?).unwrap();
    // At a phone's width the dashboard fits: nothing scrolls sideways but the tables.
    c.set_window_size(390, 1400).await?;
    let over = c
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await?;
    assert_eq!(
        over.as_i64(),
        Some(0),
        "the dashboard overflows a phone's width"
    );
    c.set_window_size(1280, 1400).await?;
    c.goto(&format!(
        "http://{addr}/#/usage?waba=W1&month=2026-11&by=category&tenant=t2"
    ))
    .await?;
    c.refresh().await?;
    let line = wait_text(c, "#usage-budget", "t2").await;
    assert!(
        line.contains("unknown_tenant") && !line.contains("included"),
        "{line}"
    );
    // Another tenant's WABA is refused to this key, and the page says so.
    c.goto(&format!(
        "http://{addr}/#/usage?waba=W2&month=2026-11&by=category"
    ))
    .await?;
    c.refresh().await?;
    let refused = wait_text(c, "#usage-status", "Not shown").await;
    assert!(refused.contains("forbidden"), "{refused}");
    assert!(c
        .find(Css("#usage-result"))
        .await?
        .attr("hidden")
        .await?
        .is_some());

    // The charges explorer: every page, through Next page, is the API's rows for this key.
    c.goto(&format!("http://{addr}/#/charges")).await?;
    c.refresh().await?;
    loop {
        wait_text(c, "#charges-status", "lines shown").await;
        let more = c.find(Css("#c-more")).await?;
        if more.attr("hidden").await?.is_some() {
            break;
        }
        let before = c.find_all(Css("#charges-rows tr")).await?.len();
        more.click().await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while c.find_all(Css("#charges-rows tr")).await?.len() == before {
            assert!(Instant::now() < deadline, "the next page did not come");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let shown = c
        .execute(
            "return [...document.querySelectorAll('#charges-rows tr')].map((tr) => \
               [tr.children[1].textContent, tr.children[2].textContent]);",
            vec![],
        )
        .await?;
    let shown = shown.as_array().unwrap();
    assert_eq!(
        shown.len(),
        w1.len(),
        "the explorer's rows are not the API's"
    );
    for (row, charge) in shown.iter().zip(w1) {
        assert_eq!(row[0], "W1", "a reader key of W1 sees W1 only");
        assert_eq!(row[1], charge["id"], "{row}");
    }
    let why = c
        .find(Css("#charges-rows tr:first-child td:last-child"))
        .await?
        .text()
        .await?;
    assert!(!why.is_empty(), "each line explained");
    c.execute("window.scrollTo(0, 0);", vec![]).await?;
    std::fs::write(shots.join("charges.png"), c.screenshot().await?).unwrap();
    // The CSV download: every row, fetched with the key in a header, never in a URL.
    c.find(Css("#c-csv")).await?.click().await?;
    let done = wait_text(c, "#c-csv-done", "rows").await;
    let (status, csv) = http_key(addr, "GET", "/v1/charges?format=csv", reader, "");
    assert_eq!(status, 200);
    assert_eq!(
        csv.lines().count() - 1,
        w1.len(),
        "the API's CSV is every row"
    );
    assert_eq!(
        done,
        format!("charges.csv: {} rows, {} bytes", w1.len(), csv.len()),
        "the download is the API's CSV"
    );
    let urls = c
        .execute(
            "return performance.getEntriesByType('resource').map((e) => e.name);",
            vec![],
        )
        .await?;
    assert!(
        !urls.to_string().contains(reader),
        "the key is in no URL: {urls}"
    );
    // The filters: W2 is not this key's, so nothing of it is shown.
    c.goto(&format!("http://{addr}/#/charges?waba=W2")).await?;
    c.refresh().await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let t = c.find(Css("#charges-status")).await?.text().await?;
        if t.contains("shown") {
            break t;
        }
        assert!(Instant::now() < deadline, "{t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rows = c.find_all(Css("#charges-rows tr")).await?.len();
    assert!(
        rows == 0 || status.contains("forbidden"),
        "{status}: {rows} rows of W2"
    );
    // Signed out, nothing read with the key is left on the page.
    c.goto(&format!("http://{addr}/#/charges")).await?;
    c.refresh().await?;
    wait_text(c, "#charges-status", "lines shown").await;
    c.find(Css("#signout")).await?.click().await?;
    let left = c
        .execute(
            "return document.querySelectorAll('#charges-rows tr, #usage-days tr').length;",
            vec![],
        )
        .await?;
    assert_eq!(left, serde_json::json!(0), "rows left after signing out");
    Ok(())
}
