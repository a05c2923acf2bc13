//! The test side of HTTP: clients, bodies, and reading answers.

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
