//! An OTLP/HTTP receiver for tests: decodes the official protobuf messages
//! (`opentelemetry-proto`), keeps the spans, answers 200 or 503 as told.

// Tests run on tokio's test runtimes, which have a time driver of their own.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message;
use tokio::net::TcpListener;

const UP: Duration = Duration::from_secs(15);

/// A span as the receiver decoded it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) service: String,
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    pub(crate) parent: String,
    pub(crate) name: String,
    pub(crate) kind: i32,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) events: Vec<String>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// An OTLP/HTTP receiver: decodes `ExportTraceServiceRequest`, keeps the spans, and answers
/// with the status in `answer` (200 or 503).
pub(crate) struct Sink {
    pub(crate) addr: SocketAddr,
    pub(crate) spans: Arc<Mutex<Vec<Received>>>,
    pub(crate) answer: Arc<AtomicU16>,
}

pub(crate) async fn sink() -> Sink {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(AtomicU16::new(200));
    let (kept, status) = (spans.clone(), answer.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (kept, status) = (kept.clone(), status.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r: Request<Incoming>| {
                    let (kept, status) = (kept.clone(), status.clone());
                    async move {
                        assert_eq!(r.uri().path(), "/v1/traces");
                        assert_eq!(r.headers()["content-type"], "application/x-protobuf");
                        let body = r.into_body().collect().await.unwrap().to_bytes();
                        let code = status.load(Ordering::Relaxed);
                        if code == 200 {
                            let request = ExportTraceServiceRequest::decode(body).unwrap();
                            for rs in request.resource_spans {
                                let service = rs
                                    .resource
                                    .iter()
                                    .flat_map(|r| &r.attributes)
                                    .find(|a| a.key == "service.name")
                                    .map(|a| text(&a.value))
                                    .unwrap_or_default();
                                for ss in rs.scope_spans {
                                    for s in ss.spans {
                                        kept.lock().unwrap().push(Received {
                                            service: service.clone(),
                                            trace_id: hex(&s.trace_id),
                                            span_id: hex(&s.span_id),
                                            parent: hex(&s.parent_span_id),
                                            name: s.name.clone(),
                                            kind: s.kind,
                                            attributes: s
                                                .attributes
                                                .iter()
                                                .map(|a| (a.key.clone(), text(&a.value)))
                                                .collect(),
                                            events: s
                                                .events
                                                .iter()
                                                .map(|e| e.name.clone())
                                                .collect(),
                                        });
                                    }
                                }
                            }
                        }
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Sink {
        addr,
        spans,
        answer,
    }
}

impl Sink {
    pub(crate) fn of_key(&self, key: &str) -> Vec<Received> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| {
                s.attributes
                    .get("flowmesh.business_key")
                    .map(String::as_str)
                    == Some(key)
            })
            .cloned()
            .collect()
    }

    pub(crate) async fn wait_for(&self, key: &str, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + UP;
        loop {
            let spans = self.of_key(key);
            if spans.len() >= n {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} spans for {key}: {spans:#?}",
                spans.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Spans of business key `key` once one of each (service, kind) in `wanted` is among them
    /// (other spans of the key, such as the engine's, may come first).
    pub(crate) async fn wait_for_each(&self, key: &str, wanted: &[(&str, i32)]) -> Vec<Received> {
        let deadline = Instant::now() + UP;
        loop {
            let spans = self.of_key(key);
            if wanted.iter().all(|(service, kind)| {
                spans
                    .iter()
                    .any(|s| s.service == *service && s.kind == *kind)
            }) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "not every one of {wanted:?} for {key}: {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every span received so far.
    pub(crate) fn all(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}
