//! Forwarding one request to an upstream over a pooled HTTP/1.1 client and streaming the answer
//! back: hop-by-hop fields dropped, `X-Forwarded-For` appended, bodies never buffered, a size
//! limit on request bodies, a deadline for the response head, and protocol upgrades
//! (WebSocket) handed to the client's connection once the upstream agrees.

use std::net::IpAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::body::{self, Body, BoxError};
use crate::config::Limits;
use crate::hop;
use crate::link;
use crate::server::Caller;
use crate::timer::Connector;

/// A cheap handle to the pooled upstream clients.
#[derive(Clone)]
pub struct Forwarder {
    http1: Client<Connector, Body>,
    /// Between sidecars: HTTP/2 (prior knowledge), many requests on one connection. Upgrades
    /// still go over HTTP/1.1, where they exist.
    http2: Option<Client<Connector, Body>>,
    request_timeout: Duration,
    max_body_bytes: u64,
}

/// Marks a response as the proxy's own answer to an upstream that refused the connection (the
/// outbound proxy then passes over that instance for a while).
#[derive(Clone, Copy, Debug)]
pub struct Unreachable;

/// What kind of upstream failure a forward met, for the caller's answer and metrics.
fn failure_status(
    e: &(dyn std::error::Error + 'static),
    is_connect: bool,
) -> (StatusCode, &'static str) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        }
        // The caller's body failed, not the upstream.
        if let Some(failed) = s.downcast_ref::<crate::front::BodyError>() {
            let error = match failed {
                crate::front::BodyError::Malformed(_) => "body_malformed",
                _ => "body_incomplete",
            };
            return (StatusCode::BAD_REQUEST, error);
        }
        source = s.source();
    }
    if is_connect {
        (StatusCode::BAD_GATEWAY, "upstream_unreachable")
    } else {
        (StatusCode::BAD_GATEWAY, "upstream_failed")
    }
}

/// A failed send, from the pooled client or from the connection's own app link.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Pool(#[from] hyper_util::client::legacy::Error),
    #[error(transparent)]
    Link(#[from] link::Error),
    #[error("no response head in time")]
    Timeout,
}

impl SendError {
    fn is_connect(&self) -> bool {
        match self {
            SendError::Pool(e) => e.is_connect(),
            SendError::Link(e) => e.is_connect(),
            SendError::Timeout => false,
        }
    }

    fn is_timeout(&self) -> bool {
        matches!(
            self,
            SendError::Timeout | SendError::Link(link::Error::Timeout)
        )
    }
}

fn connector(limits: &Limits) -> Connector {
    Connector::new(limits.connect_timeout)
}

impl Forwarder {
    /// To an app: HTTP/1.1, pooled keep-alive connections.
    pub fn new(limits: &Limits) -> Forwarder {
        let http1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(connector(limits));
        Forwarder {
            http1,
            http2: None,
            request_timeout: limits.request_timeout,
            max_body_bytes: limits.max_body_bytes,
        }
    }

    /// To other sidecars: HTTP/2 without upgrade negotiation (both ends are ours).
    pub fn mesh(limits: &Limits) -> Forwarder {
        let http2 = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(crate::timer::HyperTimer::new())
            .http2_keep_alive_interval(Some(limits.idle_timeout / 2))
            .http2_keep_alive_timeout(limits.idle_timeout / 2)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector(limits));
        Forwarder {
            http2: Some(http2),
            ..Forwarder::new(limits)
        }
    }

    /// Sends `request` to `upstream` (`host:port`) and returns its answer, or the proxy's own
    /// refusal: 413 for a body over the limit, 502 when the upstream cannot be reached or fails,
    /// 504 when it sends no response head in time.
    pub async fn forward(
        &self,
        request: Request<Body>,
        upstream: &Authority,
        caller: Caller,
    ) -> Response<Body> {
        if self.max_body_bytes > 0
            && content_length(request.headers()).is_some_and(|n| n > self.max_body_bytes)
        {
            return body::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the request body is larger than {} bytes (limits.max_body_bytes)",
                    self.max_body_bytes
                ),
            );
        }
        let version = request.version();
        let upgrade = version == Version::HTTP_11 && hop::wants_upgrade(request.headers());

        let (mut parts, incoming) = request.into_parts();
        // An HTTP/1 caller's own connection to the app, when the listener gave it one.
        let link = caller
            .link
            .filter(|_| !upgrade && version != Version::HTTP_2);
        // HTTP/2 carries the host in :authority; HTTP/1.1 upstreams want a Host field. The
        // link writes the target's path alone, so it names the app when nothing else does
        // (an HTTP/1.0 caller may send no Host); hyper's client does that itself.
        if !parts.headers.contains_key(header::HOST)
            && let Some(authority) = parts.uri.authority().or(link.is_some().then_some(upstream))
            && let Ok(value) = HeaderValue::from_str(authority.as_str())
        {
            parts.headers.insert(header::HOST, value);
        }
        hop::strip(&mut parts.headers, upgrade);
        append_forwarded_for(
            &mut parts.headers,
            caller.peer.ip(),
            caller.address.as_ref(),
        );
        if link.is_none() {
            // hyper's client takes the upstream from an absolute target; the link writes the
            // path alone.
            let path = parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            let uri = Uri::builder()
                .scheme(Scheme::HTTP)
                .authority(upstream.clone())
                .path_and_query(path);
            parts.uri = match uri.build() {
                Ok(u) => u,
                Err(e) => {
                    return body::error(StatusCode::BAD_REQUEST, "bad_target", e.to_string());
                }
            };
        }
        parts.version = Version::HTTP_11;
        let body: Body = if self.max_body_bytes > 0 && !hyper::body::Body::is_end_stream(&incoming)
        {
            Limited::new(incoming, self.max_body_bytes as usize)
                .map_err(BoxError::from)
                .boxed()
        } else {
            incoming
        };
        let client = match &self.http2 {
            Some(h2) if !upgrade => h2,
            _ => &self.http1,
        };
        let sent = match link {
            // The link bounds the wait for the answer's head with a timer of its own, and
            // leaves the answer's hop-by-hop fields out as it reads the head.
            Some(link) => link.send_parts(parts, body).await.map_err(SendError::from),
            _ => match crate::timer::timeout(
                self.request_timeout,
                client.request(Request::from_parts(parts, body)),
            )
            .await
            {
                Ok(sent) => sent
                    .map(|mut r| {
                        if r.status() != StatusCode::SWITCHING_PROTOCOLS {
                            hop::strip(r.headers_mut(), false);
                        }
                        r.map(|b| b.map_err(BoxError::from).boxed())
                    })
                    .map_err(SendError::from),
                Err(_) => Err(SendError::Timeout),
            },
        };
        let mut response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return body::error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    format!(
                        "{upstream} sent no response within {} ms (limits.request_timeout)",
                        self.request_timeout.as_millis()
                    ),
                );
            }
            Err(e) => {
                let (status, error) = failure_status(&e, e.is_connect());
                let detail = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => format!(
                        "the request body is larger than {} bytes (limits.max_body_bytes)",
                        self.max_body_bytes
                    ),
                    StatusCode::BAD_REQUEST => innermost(&e),
                    _ => format!("{upstream}: {}", innermost(&e)),
                };
                let mut answer = body::error(status, error, detail);
                if e.is_connect() {
                    answer.extensions_mut().insert(Unreachable);
                }
                return answer;
            }
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            // The app agreed to switch: the answer keeps the app connection's upgrade (an
            // extension), which the client's connection takes once the answer is written.
            return response;
        }
        // The caller's protocol, not the upstream's (an HTTP/1.0 app behind an HTTP/1.1 client).
        *response.version_mut() = version;
        response
    }
}

fn content_length(headers: &hyper::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Appends `client` to `X-Forwarded-For`; `address` is `client` as a field value, when the
/// caller has one ready.
fn append_forwarded_for(
    headers: &mut hyper::HeaderMap,
    client: IpAddr,
    address: Option<&HeaderValue>,
) {
    // One lookup of the name, whether the field is there or not.
    match headers.entry(&X_FORWARDED_FOR) {
        header::Entry::Occupied(mut field) => {
            // A list that is not text is replaced, not extended.
            let value = match field.get().to_str() {
                Ok(previous) => HeaderValue::try_from(format!("{previous}, {client}")),
                Err(_) => address_value(client),
            };
            if let Ok(v) = value {
                field.insert(v);
            }
        }
        header::Entry::Vacant(field) => {
            if let Some(v) = address.cloned().or_else(|| address_value(client).ok()) {
                field.insert(v);
            }
        }
    }
}

/// An address as a field value; IPv4 (nearly every hop) without the formatting machinery,
/// which costs more than the rest of a forwarded request's header handling.
pub(crate) fn address_value(ip: IpAddr) -> Result<HeaderValue, header::InvalidHeaderValue> {
    let IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string());
    };
    let mut text = [0u8; 15];
    let mut n = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            text[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            text[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        text[n] = b'0' + octet % 10;
        n += 1;
    }
    HeaderValue::from_bytes(&text[..n])
}

/// The innermost cause of a client error ("Connection refused", not "client error (Connect)").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_the_standard_library_writes_them() {
        for text in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.9",
            "192.168.1.255",
            "255.255.255.255",
            "::1",
            "fe80::1:2",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(address_value(ip).unwrap(), ip.to_string().as_str());
        }
    }

    #[test]
    fn the_caller_is_appended_to_a_forwarded_for_list() {
        let mut headers = hyper::HeaderMap::new();
        let first: IpAddr = "10.0.0.7".parse().unwrap();
        let ready = address_value(first).unwrap();
        append_forwarded_for(&mut headers, first, Some(&ready));
        assert_eq!(headers["x-forwarded-for"], "10.0.0.7");
        append_forwarded_for(&mut headers, "127.0.0.1".parse().unwrap(), None);
        assert_eq!(headers["x-forwarded-for"], "10.0.0.7, 127.0.0.1");
    }
}
