//! `GET /`, `/console/app.js`, `/console/app.css`: the web console, three files embedded in the
//! binary at build time (`crates/server/console/`; no CDN, no build step but cargo). Every file
//! comes with the console's security headers: a Content-Security-Policy allowing this origin's
//! script, style and API only (no inline script or style, no frame), no sniffing, no referrer
//! (decisions.md D173). The calculator is the public page; the pages behind the sign-in (an
//! API key kept in the browser's sessionStorage) read the keyed API as any client does.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The console's page.
pub const INDEX_HTML: &str = include_str!("../../console/index.html");
/// Its script: the calculator, the chart, the sign-in.
pub const APP_JS: &str = include_str!("../../console/app.js");
/// Its style sheet.
pub const APP_CSS: &str = include_str!("../../console/app.css");

/// The policy of every console file: this origin only, no inline code, no frames.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // The files change with the binary only; a short cache keeps an upgrade visible.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (StatusCode::OK, headers, body).into_response()
}

pub(crate) async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX_HTML)
}

pub(crate) async fn script() -> Response {
    file("text/javascript; charset=utf-8", APP_JS)
}

pub(crate) async fn style() -> Response {
    file("text/css; charset=utf-8", APP_CSS)
}
