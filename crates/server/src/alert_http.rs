//! Budget alerts leave over HTTP: the engine's [`AlertPoster`] port implemented with `reqwest`
//! over rustls (certificates checked against the bundled webpki roots).

use std::time::Duration;
use wabill_engine::alerts::{AlertPoster, HttpUrl, PostFuture};

/// The alert poster of the service: one client, kept for every delivery.
pub struct ReqwestPoster {
    client: reqwest::Client,
}

impl ReqwestPoster {
    /// A poster whose connections and requests give up after `timeout` (the alert
    /// configuration's timeout per attempt).
    pub fn new(timeout: Duration) -> Result<ReqwestPoster, String> {
        Ok(ReqwestPoster {
            client: client(timeout)?,
        })
    }
}

impl AlertPoster for ReqwestPoster {
    fn post<'a>(
        &'a self,
        url: &'a HttpUrl,
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
        timeout: Duration,
    ) -> PostFuture<'a> {
        Box::pin(post(&self.client, url, headers, body, timeout))
    }
}

/// The HTTP client of alert deliveries (HTTP/1.1 and TLS through rustls with the webpki roots;
/// no redirects followed, no proxy from the environment).
fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent("wabill")
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// POSTs `body` with `headers`; the status code answered, or why there is none.
async fn post(
    client: &reqwest::Client,
    url: &HttpUrl,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<u16, String> {
    let mut request = client
        .post(url.to_url())
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    match request.send().await {
        Ok(answer) => Ok(answer.status().as_u16()),
        Err(e) if e.is_timeout() => Err(format!("no answer in {} ms", timeout.as_millis())),
        Err(e) => {
            // The whole chain: reqwest's top-level message alone hides the cause.
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why.push_str(": ");
                why.push_str(&s.to_string());
                source = s.source();
            }
            Err(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wabill_engine::alerts::parse_http_url;

    /// An `https://` URL is spoken TLS to: a plain-HTTP answer is a handshake failure, never a
    /// delivery.
    #[tokio::test]
    async fn https_speaks_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = listener.accept().await {
                // The whole request (or a TLS ClientHello), then a plain-HTTP answer.
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while got.first() != Some(&0x16) && !got.ends_with(b"\r\n\r\n{}") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let timeout = Duration::from_secs(5);
        let poster = ReqwestPoster::new(timeout).unwrap();
        let url = parse_http_url(&format!("https://127.0.0.1:{port}/hook")).unwrap();
        let r = poster.post(&url, &[("X-A", "1")], b"{}", timeout).await;
        assert!(r.is_err(), "{r:?}");
        let url = parse_http_url(&format!("http://127.0.0.1:{port}/hook")).unwrap();
        assert_eq!(poster.post(&url, &[], b"{}", timeout).await, Ok(204));
    }
}
