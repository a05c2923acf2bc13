//! A small HTTP/1.1 client on hyper: pooled keep-alive connections and a deadline per request.
//! Raft RPC, write forwarding and the CLI all use it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::timer::Connector;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url}: no answer within {} ms", timeout.as_millis())]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: {message}")]
    Request { url: String, message: String },
}

/// An answer: status, headers, the whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<Connector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> HttpClient {
        HttpClient::new()
    }
}

impl HttpClient {
    pub fn new() -> HttpClient {
        let connector = Connector::new(Duration::from_secs(2));
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(128)
            .build(connector);
        HttpClient { inner }
    }

    /// Sends a request and reads the whole answer, within `timeout`.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        let request_error = |message: String| Error::Request {
            url: url.to_owned(),
            message,
        };
        let mut builder = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| request_error(e.to_string()))?;
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| request_error(describe(&e)))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| request_error(e.to_string()))?
                .to_bytes();
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match crate::timer::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                url: url.to_owned(),
                timeout,
            }),
        }
    }
}

/// The innermost cause of a client error (e.g. "Connection refused").
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}
