//! The test side of HTTP: clients, bodies, and reading answers.

// Tests run on tokio's test runtimes, which have a time driver of their own.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncReadExt;

pub(crate) type TestBody = BoxBody<Bytes, Infallible>;

/// HTTP/1.1 with pooled keep-alive connections.
pub(crate) fn client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// HTTP/2 with prior knowledge.
pub(crate) fn h2_client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(HttpConnector::new())
}

pub(crate) fn full(b: impl Into<Bytes>) -> TestBody {
    Full::new(b.into()).boxed()
}

pub(crate) fn empty() -> TestBody {
    full(Bytes::new())
}

/// The answer's body as JSON (a panic that shows the body when it is not).
pub(crate) async fn json(response: hyper::Response<hyper::body::Incoming>) -> serde_json::Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// Reads a response head from `stream`, byte by byte so that nothing after it is consumed.
pub(crate) async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A port on 127.0.0.1 that was free a moment ago (for configs that must name it first).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A JSON request to a sidecar's local API: the status and the JSON answer (text that is not
/// JSON comes back as a string; status 0 when nothing answers).
pub(crate) async fn api(
    addr: std::net::SocketAddr,
    method: hyper::Method,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(full(Bytes::from(body.unwrap_or("").to_owned())))
        .unwrap();
    let Ok(response) = client().request(request).await else {
        return (0, serde_json::Value::Null);
    };
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        })
    };
    (status, value)
}

/// Polls `f` until it gives `Some`, or fails the test after `within`.
pub(crate) async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    within: std::time::Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// POSTs `body` as JSON to a local API: the status and the JSON answer.
pub(crate) async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    api(addr, hyper::Method::POST, path, Some(&body.to_string())).await
}
