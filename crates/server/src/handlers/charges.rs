//! `GET /v1/charges`, `GET /v1/unratable` and `GET /metrics`.

use crate::api::{AppState, Auth, Params, MAX_PAGE_ROWS};
use crate::errors::{problem, ErrorCode};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use wabill_engine::charges::{
    write_call_row_csv, write_call_row_json, write_row_csv, write_row_json,
};
use wabill_formats::charges::json_str;
use wabill_rating::UnixMs;
use wabill_store::{CallChargeFilter, CallCursor, ChargeCursor, ChargeFilter, Role};

#[derive(serde::Deserialize)]
pub(crate) struct ChargesQuery {
    waba: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
    format: Option<String>,
    unit: Option<String>,
}

#[allow(clippy::result_large_err)]
fn instant_param(v: &Option<String>, name: &str) -> Result<Option<UnixMs>, Response> {
    v.as_deref()
        .map(|s| {
            wabill_formats::time::parse_instant(s)
                .map_err(|why| problem(ErrorCode::InvalidParameter, format!("{name}: {why}")))
        })
        .transpose()
}

pub(crate) async fn charges(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Params(q): Params<ChargesQuery>,
) -> Response {
    let (from_ms, to_ms) = match (instant_param(&q.from, "from"), instant_param(&q.to, "to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let calls = q.unit.as_deref() == Some("call");
    let after = match q.after.as_deref().filter(|_| !calls).map(parse_cursor) {
        Some(None) => {
            return problem(
                ErrorCode::InvalidParameter,
                "after: not a cursor from a previous page",
            )
        }
        Some(Some(c)) => Some(c),
        None => None,
    };
    // What the OpenAPI document says is taken, and nothing else: a limit out of its range or
    // another format is refused, never quietly replaced (decisions.md D77).
    let paged = q.limit.is_some();
    let limit = q.limit.unwrap_or(1000);
    if !(1..=MAX_PAGE_ROWS).contains(&limit) {
        return problem(
            ErrorCode::InvalidParameter,
            format!("limit: {limit} is not within 1 to {MAX_PAGE_ROWS}"),
        );
    }
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return problem(
                ErrorCode::InvalidParameter,
                format!("format: '{other}' is not json or csv"),
            )
        }
    };
    match q.unit.as_deref() {
        None | Some("message") => {}
        Some("call") => {
            let after = match q.after.as_deref() {
                None => None,
                Some(c) => match parse_call_cursor(c) {
                    Some(c) => Some(c),
                    None => {
                        return problem(
                            ErrorCode::InvalidParameter,
                            "after: not a cursor from a previous page of calls",
                        )
                    }
                },
            };
            let filter = CallChargeFilter {
                waba: q.waba.clone(),
                wabas: caller.wabas.clone(),
                from_ms,
                to_ms,
                after,
                limit,
            };
            if csv && !paged {
                let header = wabill_formats::calls::call_csv_header();
                return csv_download(state, filter, header);
            }
            return call_charges(&state, &filter, csv).await;
        }
        Some(other) => {
            return problem(
                ErrorCode::InvalidParameter,
                format!("unit: '{other}' is not message or call"),
            )
        }
    }
    let filter = ChargeFilter {
        waba: q.waba.clone(),
        wabas: caller.wabas.clone(),
        from_ms,
        to_ms,
        after,
        limit,
    };
    // A CSV download without a `limit` is every row the filter matches, streamed a page at a
    // time (decisions.md D95); with a `limit` it is one page, its cursor in X-Next-Cursor.
    if csv && !paged {
        let header = wabill_formats::charges::csv_header();
        return csv_download(state, filter, header);
    }
    let rows = match state.engine.store().charges(&filter).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "reading charges failed");
            return problem(ErrorCode::StoreUnavailable, "try again");
        }
    };
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| format_cursor(&r.cursor())))
        .flatten();
    if csv {
        let mut out = wabill_formats::charges::csv_header().into_bytes();
        for r in &rows {
            write_row_csv(&mut out, r);
        }
        let mut resp = (StatusCode::OK, out).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            "text/csv; charset=utf-8".parse().expect("valid"),
        );
        if let Some(n) = next {
            resp.headers_mut()
                .insert("x-next-cursor", n.parse().expect("ascii cursor"));
        }
        return resp;
    }
    let mut out = Vec::with_capacity(rows.len() * 340 + 64);
    out.extend_from_slice(b"{\"charges\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_row_json(&mut out, r);
    }
    out.extend_from_slice(b"],\"next\":");
    match next {
        Some(n) => json_str(&mut out, &n),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    let mut resp = (StatusCode::OK, out).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    resp
}

/// A filter a CSV download pages through: one store read of rows after a cursor, how a row is
/// written, and the cursor after a row.
trait CsvPages: Send + 'static {
    type Row: Send;
    fn set_limit(&mut self, limit: u32);
    fn read<'a>(&'a self, state: &'a AppState) -> wabill_store::StoreFuture<'a, Vec<Self::Row>>;
    fn write(out: &mut Vec<u8>, row: &Self::Row);
    fn continue_after(&mut self, row: &Self::Row);
}

impl CsvPages for ChargeFilter {
    type Row = wabill_store::ChargeRow;
    fn set_limit(&mut self, limit: u32) {
        self.limit = limit;
    }
    fn read<'a>(&'a self, state: &'a AppState) -> wabill_store::StoreFuture<'a, Vec<Self::Row>> {
        state.engine.store().charges(self)
    }
    fn write(out: &mut Vec<u8>, row: &Self::Row) {
        write_row_csv(out, row);
    }
    fn continue_after(&mut self, row: &Self::Row) {
        self.after = Some(row.cursor());
    }
}

impl CsvPages for CallChargeFilter {
    type Row = wabill_store::CallChargeRow;
    fn set_limit(&mut self, limit: u32) {
        self.limit = limit;
    }
    fn read<'a>(&'a self, state: &'a AppState) -> wabill_store::StoreFuture<'a, Vec<Self::Row>> {
        state.engine.store().call_charges(self)
    }
    fn write(out: &mut Vec<u8>, row: &Self::Row) {
        write_call_row_csv(out, row);
    }
    fn continue_after(&mut self, row: &Self::Row) {
        self.after = Some(row.cursor());
    }
}

/// Every row `filter` matches, as one CSV body (`header` first) read from the store a page at
/// a time, so that memory stays one page whatever the count (decisions.md D95). The pages
/// follow each other by the keyset cursor, as a client paging itself would (the slow reader of
/// the simulation checks that order: nothing shown twice unless it moved, nothing that stayed
/// missed). A store failure after the first bytes ends the body with an error, so that the
/// client sees a broken transfer rather than a short file that looks complete.
fn csv_download<F: CsvPages>(state: Arc<AppState>, mut filter: F, header: String) -> Response {
    filter.set_limit(CSV_PAGE_ROWS);
    let pages = futures_util::stream::unfold(
        (state, filter, Some(header.into_bytes()), false),
        |(state, mut filter, header, ended)| async move {
            if ended {
                return None;
            }
            let rows = match filter.read(&state).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "reading charges for a CSV download failed");
                    let err = std::io::Error::other(format!("reading charges failed: {e}"));
                    return Some((Err(err), (state, filter, None, true)));
                }
            };
            let mut out = header.unwrap_or_default();
            for r in &rows {
                F::write(&mut out, r);
            }
            let ended = (rows.len() as u32) < CSV_PAGE_ROWS;
            if let Some(last) = rows.last() {
                filter.continue_after(last);
            }
            Some((
                Ok::<_, std::io::Error>(axum::body::Bytes::from(out)),
                (state, filter, None, ended),
            ))
        },
    );
    let mut resp = axum::body::Body::from_stream(pages).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "text/csv; charset=utf-8".parse().expect("valid"),
    );
    resp
}

/// `GET /v1/charges?unit=call`: the stored call charges, one line per call as `wabill rate`
/// writes it (JSON), or its call table (CSV), paged by (start, id, WABA).
async fn call_charges(state: &AppState, filter: &CallChargeFilter, csv: bool) -> Response {
    let rows = match state.engine.store().call_charges(filter).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "reading call charges failed");
            return problem(ErrorCode::StoreUnavailable, "try again");
        }
    };
    let next = (rows.len() as u32 == filter.limit)
        .then(|| rows.last().map(|r| format_call_cursor(&r.cursor())))
        .flatten();
    if csv {
        let mut out = wabill_formats::calls::call_csv_header().into_bytes();
        for r in &rows {
            write_call_row_csv(&mut out, r);
        }
        let mut resp = (StatusCode::OK, out).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            "text/csv; charset=utf-8".parse().expect("valid"),
        );
        if let Some(n) = next {
            resp.headers_mut()
                .insert("x-next-cursor", n.parse().expect("ascii cursor"));
        }
        return resp;
    }
    let mut out = Vec::with_capacity(rows.len() * 420 + 64);
    out.extend_from_slice(b"{\"charges\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_call_row_json(&mut out, r);
    }
    out.extend_from_slice(b"],\"next\":");
    match next {
        Some(n) => json_str(&mut out, &n),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    let mut resp = (StatusCode::OK, out).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    resp
}

/// Rows per store read of a CSV download.
const CSV_PAGE_ROWS: u32 = 2000;

/// A call cursor: the start, then the hex of the JSON array `[waba, id]` (the cursor shape of
/// messages: digits, a dot, hex).
fn format_call_cursor(c: &CallCursor) -> String {
    let key = serde_json::to_string(&(&c.waba, &c.id)).expect("strings");
    format!("{}.{}", c.start_ms, hex::encode(key.as_bytes()))
}

/// Every value of the cursor's shape is a position (decisions.md D77): hex that is not such an
/// array is an id, before every WABA of that id.
fn parse_call_cursor(s: &str) -> Option<CallCursor> {
    let (at, key) = s.split_once('.')?;
    let key = String::from_utf8(hex::decode(key).ok()?).ok()?;
    let (waba, id) =
        serde_json::from_str::<(String, String)>(&key).unwrap_or_else(|_| (String::new(), key));
    Some(CallCursor {
        start_ms: at.parse().ok()?,
        id,
        waba,
    })
}

fn format_cursor(c: &ChargeCursor) -> String {
    format!("{}.{}", c.sent_at_ms, hex::encode(c.id.as_bytes()))
}

fn parse_cursor(s: &str) -> Option<ChargeCursor> {
    let (at, id) = s.split_once('.')?;
    Some(ChargeCursor {
        sent_at_ms: at.parse().ok()?,
        id: String::from_utf8(hex::decode(id).ok()?).ok()?,
    })
}

pub(crate) async fn unratable(State(state): State<Arc<AppState>>, Auth(caller): Auth) -> Response {
    if caller.role != Role::Admin {
        return problem(
            ErrorCode::Forbidden,
            "only an admin key sees rating errors across portfolios",
        );
    }
    let list = state.engine.unratable().await;
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({ "unratable": list })),
    )
        .into_response()
}

pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut resp = state.engine.metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4".parse().expect("valid"),
    );
    resp
}
