//! A small app for proxy tests, on a real socket on 127.0.0.1: it echoes what it received,
//! streams large bodies both ways, answers any status, closes its connection, never answers,
//! and switches protocols to a byte echo on `Upgrade: echo`; or fails every request.

#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, Infallible>;

/// The running app: where it listens, and how many requests reached it.
pub(crate) struct App {
    pub(crate) addr: SocketAddr,
    pub(crate) hits: Arc<AtomicU64>,
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

/// The byte at offset `i` of a streamed pattern body (checkable without keeping it).
pub(crate) fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

async fn handle(request: Request<Incoming>, hits: Arc<AtomicU64>) -> Response<Body> {
    hits.fetch_add(1, Ordering::Relaxed);
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    if let Some(code) = path.strip_prefix("/status/") {
        let status = StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
        let mut r = Response::new(full(format!("status {code}")));
        *r.status_mut() = status;
        r.headers_mut().insert("x-app", "yes".parse().unwrap());
        // `?set=NAME`: the answer carries `NAME: 1` as well.
        if let Some(name) = query.strip_prefix("set=") {
            let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
            r.headers_mut().insert(name, "1".parse().unwrap());
        }
        return r;
    }
    if path == "/close" {
        // The app ends the keep-alive connection after this answer.
        let mut r = Response::new(full("closing"));
        r.headers_mut()
            .insert("connection", "close".parse().unwrap());
        return r;
    }
    if path == "/never" {
        std::future::pending::<()>().await;
    }
    if path == "/download" {
        let n: u64 = query
            .strip_prefix("bytes=")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let chunks = (0..n).step_by(64 * 1024).map(move |start| {
            let end = (start + 64 * 1024).min(n);
            let chunk: Vec<u8> = (start..end).map(pattern).collect();
            Ok::<_, Infallible>(Frame::data(Bytes::from(chunk)))
        });
        let stream = futures_util::stream::iter(chunks);
        return Response::new(StreamBody::new(stream).boxed());
    }
    if request
        .headers()
        .get("upgrade")
        .is_some_and(|v| v == "echo")
    {
        let upgrade = hyper::upgrade::on(request);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        r.headers_mut().insert("upgrade", "echo".parse().unwrap());
        return r;
    }
    // Echo: what arrived, with the body counted and checked against the pattern.
    let method = request.method().to_string();
    let version = format!("{:?}", request.version());
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                serde_json::Value::String(v.to_str().unwrap_or("?").to_owned()),
            )
        })
        .collect();
    let mut body = request.into_body();
    let (mut bytes, mut pattern_ok) = (0u64, true);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            for b in data.iter() {
                pattern_ok &= *b == pattern(bytes);
                bytes += 1;
            }
        }
    }
    let echo = serde_json::json!({
        "method": method, "path": path, "query": query, "version": version,
        "headers": headers, "body_bytes": bytes, "body_is_pattern": pattern_ok,
    });
    let mut r = Response::new(full(echo.to_string()));
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

/// Starts the app on a free port.
pub(crate) async fn start() -> App {
    start_with(None).await
}

/// An app that answers every request with `status` at once: one that fails fast.
pub(crate) async fn start_failing(status: StatusCode) -> App {
    start_with(Some(status)).await
}

async fn start_with(fixed: Option<StatusCode>) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let hits = counted.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| {
                    let hits = hits.clone();
                    async move {
                        let answer = match fixed {
                            Some(status) => {
                                hits.fetch_add(1, Ordering::Relaxed);
                                let mut r = Response::new(full("failing"));
                                *r.status_mut() = status;
                                r
                            }
                            None => handle(r, hits).await,
                        };
                        Ok::<_, Infallible>(answer)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    App { addr, hits }
}
