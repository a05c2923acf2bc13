//! Sending spans to an OTLP/HTTP collector (protobuf, `POST {endpoint}/v1/traces`) over the
//! sidecar's own hyper client. Spans wait in a bounded queue; a full queue drops (and counts)
//! rather than slow traffic. Batches are retried with backoff on 429, 502, 503, 504 and
//! connection failures, then dropped and counted.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use tokio::sync::mpsc;

use super::span::{Attr, Span, key_value};
use crate::metrics::Metrics;
use crate::timer::Connector;

/// How the exporter batches and retries.
#[derive(Clone, Debug)]
pub struct Options {
    /// The collector's base URL (`/v1/traces` is appended unless present).
    pub endpoint: String,
    pub service: String,
    pub instance: String,
    /// Spans held at most; more are dropped.
    pub queue: usize,
    pub batch: usize,
    /// Longest a span waits for its batch.
    pub interval: Duration,
    pub attempts: u32,
    pub timeout: Duration,
}

impl Options {
    pub fn new(endpoint: String, service: String, instance: String) -> Options {
        Options {
            endpoint,
            service,
            instance,
            queue: 4096,
            batch: 512,
            interval: Duration::from_millis(500),
            attempts: 5,
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("OTLP endpoint '{0}' is not an http:// URL with a host")]
    Endpoint(String),
}

/// The sending side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Exporter {
    queue: mpsc::Sender<Span>,
    metrics: Metrics,
}

impl Exporter {
    pub fn record(&self, span: Span) {
        if self.queue.try_send(span).is_err() {
            self.metrics.span_dropped(1);
        }
    }
}

/// The task that sends batches.
pub struct Sender {
    options: Options,
    uri: Uri,
    queue: mpsc::Receiver<Span>,
    metrics: Metrics,
    client: Client<Connector, Full<Bytes>>,
}

/// Where spans for the collector at `base` are posted: `base` with `/v1/traces` appended
/// unless present. `None` unless it is an `http://` URL naming a host; the configuration
/// checks with this before anything starts.
pub fn traces_uri(base: &str) -> Option<Uri> {
    let base = base.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    };
    url.parse()
        .ok()
        .filter(|u: &Uri| u.scheme_str() == Some("http") && u.authority().is_some())
}

pub fn build(options: Options, metrics: Metrics) -> Result<(Exporter, Sender), Error> {
    let uri =
        traces_uri(&options.endpoint).ok_or_else(|| Error::Endpoint(options.endpoint.clone()))?;
    let (tx, rx) = mpsc::channel(options.queue.max(1));
    let connector = Connector::new(Duration::from_secs(2));
    Ok((
        Exporter {
            queue: tx,
            metrics: metrics.clone(),
        },
        Sender {
            options,
            uri,
            queue: rx,
            metrics,
            client: Client::builder(TokioExecutor::new()).build(connector),
        },
    ))
}

/// Whether a failed export is worth another attempt (OTLP/HTTP spec: 429, 502, 503, 504).
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

impl Sender {
    /// Sends until every `Exporter` is dropped, then flushes what is queued.
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.options.batch);
        loop {
            let first = self.queue.recv().await;
            let Some(first) = first else { break };
            batch.push(first);
            let deadline = tokio::time::Instant::now() + self.options.interval;
            while batch.len() < self.options.batch {
                match crate::timer::timeout_at(deadline, self.queue.recv()).await {
                    Ok(Some(span)) => batch.push(span),
                    Ok(None) | Err(_) => break,
                }
            }
            self.send(std::mem::take(&mut batch)).await;
        }
    }

    fn encode(&self, spans: &[Span]) -> Bytes {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        key_value("service.name", &Attr::from(self.options.service.as_str())),
                        key_value(
                            "service.instance.id",
                            &Attr::from(self.options.instance.as_str()),
                        ),
                        key_value("telemetry.sdk.name", &Attr::from("flowmesh")),
                        key_value("telemetry.sdk.language", &Attr::from("rust")),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "flowmesh-proxy".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..Default::default()
                    }),
                    spans: spans.iter().map(Span::to_proto).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        Bytes::from(request.encode_to_vec())
    }

    async fn send(&self, spans: Vec<Span>) {
        let body = self.encode(&spans);
        let mut backoff = Duration::from_millis(200);
        for attempt in 1..=self.options.attempts {
            let request = Request::post(self.uri.clone())
                .header("content-type", "application/x-protobuf")
                .body(Full::new(body.clone()));
            let Ok(request) = request else { break };
            let sent = crate::timer::timeout(self.options.timeout, async {
                let response = self.client.request(request).await?;
                let status = response.status();
                // Read the answer so that the connection can be reused.
                let _ = response.into_body().collect().await;
                Ok::<_, hyper_util::client::legacy::Error>(status)
            })
            .await;
            let retry = match sent {
                Ok(Ok(status)) if status.is_success() => return,
                Ok(Ok(status)) => {
                    tracing::debug!(%status, attempt, "the collector refused {} spans", spans.len());
                    retryable(status)
                }
                Ok(Err(e)) => {
                    tracing::debug!(attempt, "cannot reach the collector: {e}");
                    true
                }
                Err(_) => true,
            };
            if !retry || attempt == self.options.attempts {
                break;
            }
            crate::timer::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        tracing::warn!(
            "dropped {} spans: the collector at {} did not take them",
            spans.len(),
            self.uri
        );
        self.metrics.span_dropped(spans.len() as u64);
    }
}
