//! Budget alerts leave over HTTP: the engine's [`AlertPoster`] port implemented with `reqwest`
//! over rustls (certificates checked against the bundled webpki roots).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use wabill_engine::alerts::{AlertPoster, HttpUrl, PostFuture};
use wabill_engine::destinations::AllowedNetworks;

/// The alert poster of the service: one client, kept for every delivery.
pub struct ReqwestPoster {
    client: reqwest::Client,
}

impl ReqwestPoster {
    /// A poster whose connections and requests give up after `timeout` (the alert
    /// configuration's timeout per attempt), and that connects only to addresses `networks`
    /// permits: every address a host name resolves to is checked when it is resolved, so that a
    /// name pointing at a private address is refused (IP literals are the engine's to check).
    pub fn new(timeout: Duration, networks: AllowedNetworks) -> Result<ReqwestPoster, String> {
        Ok(ReqwestPoster {
            client: client(timeout, Arc::new(GuardedResolver(Arc::new(networks))))?,
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
fn client(timeout: Duration, resolver: Arc<GuardedResolver>) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .dns_resolver(resolver)
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

/// The system's resolver, keeping only the addresses alerts may go to.
struct GuardedResolver(Arc<AllowedNetworks>);

/// The addresses of `addrs` that `networks` permits, or why there are none.
fn permitted(
    host: &str,
    addrs: impl Iterator<Item = SocketAddr>,
    networks: &AllowedNetworks,
) -> Result<Vec<SocketAddr>, String> {
    let (ok, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.partition(|a| networks.permits(a.ip()));
    if ok.is_empty() && !refused.is_empty() {
        return Err(format!(
            "{host} resolves only to addresses alerts may not go to ({}); \
             alert-allow-networks can allow them",
            refused
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(ok)
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let networks = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let ok = permitted(&host, addrs, &networks)?;
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
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
        let poster = ReqwestPoster::new(timeout, AllowedNetworks::everything()).unwrap();
        let url = parse_http_url(&format!("https://127.0.0.1:{port}/hook")).unwrap();
        let r = poster.post(&url, &[("X-A", "1")], b"{}", timeout).await;
        assert!(r.is_err(), "{r:?}");
        let url = parse_http_url(&format!("http://127.0.0.1:{port}/hook")).unwrap();
        assert_eq!(poster.post(&url, &[], b"{}", timeout).await, Ok(204));
    }

    #[test]
    fn resolved_addresses_are_kept_only_where_alerts_may_go() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let none = AllowedNetworks::default();
        let mixed = [a("127.0.0.1:0"), a("93.184.215.14:0")];
        assert_eq!(
            permitted("h", mixed.into_iter(), &none).unwrap(),
            [a("93.184.215.14:0")]
        );
        let err = permitted("h", [a("10.0.0.1:0"), a("[::1]:0")].into_iter(), &none).unwrap_err();
        assert!(err.contains("10.0.0.1") && err.contains("::1"), "{err}");
        let lo = AllowedNetworks::parse("127.0.0.0/8").unwrap();
        assert_eq!(
            permitted("h", [a("127.0.0.1:0")].into_iter(), &lo).unwrap(),
            [a("127.0.0.1:0")]
        );
    }

    /// A host name that resolves to loopback is refused at connection time, though the URL's
    /// host is no IP literal.
    #[tokio::test]
    async fn a_name_of_a_private_address_is_not_connected_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let timeout = Duration::from_secs(5);
        // "localhost" is resolved by the system (/etc/hosts) to 127.0.0.1 here.
        let url = parse_http_url(&format!("http://localhost:{port}/hook")).unwrap();
        let guarded = ReqwestPoster::new(timeout, AllowedNetworks::default()).unwrap();
        let r = guarded.post(&url, &[], b"{}", timeout).await;
        assert!(
            matches!(&r, Err(e) if e.contains("resolves only to addresses")),
            "{r:?}"
        );
    }
}
