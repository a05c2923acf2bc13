//! Telemetry of the traffic the sidecar carries: each request gets a SERVER span (inbound and
//! mesh) or a CLIENT span (outbound) with the HTTP semantic-convention attributes, joined into
//! one trace per business transaction: the app's `traceparent` wins, else the context last seen
//! with the request's business key ([`stitch`]), else a new root. Observations made on the way
//! are span events. Spans leave through [`export`].

pub mod context;
pub mod export;
pub mod span;
pub mod stitch;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header;
use hyper::{Request, Response, StatusCode, Version};

use crate::body::{self, Body};
use crate::metrics::Metrics;
use crate::observe::{Observation, RuleSet};
use context::{SpanContext, TRACEPARENT, TRACESTATE};
use export::Exporter;
use span::{Attr, Event, Kind, Span};
use stitch::Stitch;

/// A cheap handle: what every listener's requests go through.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    exporter: Option<Exporter>,
    stitch: Stitch,
    rules: RuleSet,
    metrics: Metrics,
    max_buffered: usize,
}

/// A request on its way: its span so far, its route and what was observed.
pub struct InFlight {
    span: Option<Span>,
    /// The binding's path template, for metrics (`None`: no binding matched).
    pub route: Option<String>,
    pub observation: Option<Observation>,
}

impl InFlight {
    fn none() -> InFlight {
        InFlight {
            span: None,
            route: None,
            observation: None,
        }
    }
}

/// A body read whole, up to `max` bytes. Boxed with its type spelled out: left to inference,
/// the future's `Send` proof trips over the boxed error's lifetime (a known rustc limit).
fn collect(
    body: Body,
    max: usize,
) -> std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<http_body_util::Collected<Bytes>, body::BoxError>>
            + Send,
    >,
> {
    Box::pin(Limited::new(body, max).collect())
}

fn version_text(v: Version) -> &'static str {
    match v {
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        _ => "1.1",
    }
}

impl Telemetry {
    pub fn new(
        exporter: Option<Exporter>,
        stitch: Stitch,
        rules: RuleSet,
        metrics: Metrics,
        max_buffered: usize,
    ) -> Telemetry {
        Telemetry {
            inner: Arc::new(Inner {
                exporter,
                stitch,
                rules,
                metrics,
                max_buffered,
            }),
        }
    }

    /// Nothing to export and no binding to match: requests pass untouched.
    pub fn is_idle(&self) -> bool {
        self.inner.exporter.is_none() && self.inner.rules.get().is_empty()
    }

    /// Whether spans are exported at all.
    pub fn exports(&self) -> bool {
        self.inner.exporter.is_some()
    }

    /// Hands a finished span to the exporter (dropped and counted when its queue is full).
    pub fn export(&self, span: Span) {
        if let Some(e) = &self.inner.exporter {
            e.record(span);
        }
    }

    pub fn stitch(&self) -> &Stitch {
        &self.inner.stitch
    }

    /// Matches, observes and opens the span of a request for `service` (this sidecar's own
    /// for inbound and mesh, the target's for outbound); sets the `traceparent` sent on.
    /// `Err` is the proxy's own answer (a body over the buffering limit that a binding reads).
    pub async fn begin(
        &self,
        direction: &'static str,
        service: &str,
        request: Request<Body>,
    ) -> Result<(Request<Body>, InFlight), Response<Body>> {
        let inner = &self.inner;
        let rules = inner.rules.get();
        let matched = if rules.is_empty() {
            None
        } else {
            rules.find(service, request.method().as_str(), request.uri().path())
        };
        if matched.is_none() && inner.exporter.is_none() {
            return Ok((request, InFlight::none()));
        }
        let start = SystemTime::now();
        let (mut parts, incoming) = request.into_parts();

        // The body, only when the binding reads it, only up to the limit.
        let mut json = None;
        let body = match &matched {
            Some(m) if m.binding.reads_body() => {
                let collected = collect(incoming, inner.max_buffered).await;
                match collected {
                    Ok(c) => {
                        let bytes: Bytes = c.to_bytes();
                        json = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
                        body::full(bytes)
                    }
                    Err(e) => {
                        let too_large = e.is::<http_body_util::LengthLimitError>();
                        return Err(if too_large {
                            body::error(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "body_too_large",
                                format!(
                                    "{} {} is observed by its body, which is larger than {} bytes (limits.max_buffered_body_bytes)",
                                    parts.method,
                                    parts.uri.path(),
                                    inner.max_buffered
                                ),
                            )
                        } else {
                            body::error(
                                StatusCode::BAD_REQUEST,
                                "body_incomplete",
                                format!("the request body could not be read: {e}"),
                            )
                        });
                    }
                }
            }
            _ => incoming,
        };

        let mut observation = match &matched {
            Some(m) => match m.observe(
                parts.uri.query(),
                &parts.headers,
                json.as_ref(),
                String::new(),
            ) {
                Ok(o) => Some(o),
                Err(why) => {
                    tracing::debug!(message = %m.binding.message, "no observation: {why}");
                    inner
                        .metrics
                        .observation_missed(direction, &m.binding.message);
                    None
                }
            },
            None => None,
        };
        let key = observation.as_ref().map(|o| o.key.clone());
        let from_app = SpanContext::from_headers(&parts.headers);
        let parent = from_app.or_else(|| key.as_deref().and_then(|k| inner.stitch.lookup(k)));
        let context = parent.map_or_else(SpanContext::root, |p| p.child());
        parts.headers.insert(TRACEPARENT, context.header_value());
        if parent.is_none() {
            parts.headers.remove(TRACESTATE);
        }
        if let Some(k) = &key {
            inner.stitch.remember(k, context);
        }
        if let Some(o) = &mut observation {
            o.trace_id = context.trace_hex();
            o.traceparent = context.traceparent();
            inner.metrics.observed(direction, &o.message);
            tracing::debug!(message = %o.message, key = %o.key, id = %o.id, "observed");
        }

        let route = matched.as_ref().map(|m| m.binding.path.source().to_owned());
        let kind = if direction == "outbound" {
            Kind::Client
        } else {
            Kind::Server
        };
        let mut attributes: Vec<(&'static str, Attr)> = vec![
            ("http.request.method", parts.method.as_str().into()),
            ("url.path", parts.uri.path().into()),
            ("url.scheme", "http".into()),
            (
                "network.protocol.version",
                version_text(parts.version).into(),
            ),
            ("flowmesh.direction", direction.into()),
        ];
        if let Some(r) = &route {
            attributes.push(("http.route", r.clone().into()));
        }
        if let Some(q) = parts.uri.query() {
            attributes.push(("url.query", q.into()));
        }
        if kind == Kind::Client {
            attributes.push(("server.address", service.into()));
        } else if let Some(host) = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            attributes.push(("server.address", host.into()));
        }
        if let Some(ua) = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
        {
            attributes.push(("user_agent.original", ua.into()));
        }
        if let Some(k) = &key {
            attributes.push(("flowmesh.business_key", k.clone().into()));
        }
        let events = observation
            .iter()
            .map(|o| Event {
                name: "flowmesh.observation",
                at: start,
                attributes: vec![
                    ("flowmesh.message.name", o.message.clone().into()),
                    ("flowmesh.correlation_key", o.key.clone().into()),
                    ("flowmesh.observation.id", o.id.clone().into()),
                ],
            })
            .collect();
        let name = match &route {
            Some(r) => format!("{} {r}", parts.method),
            None => parts.method.to_string(),
        };
        let span = inner.exporter.as_ref().map(|_| Span {
            context,
            parent: parent.map(|p| p.span_id),
            trace_state: parts
                .headers
                .get(TRACESTATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            name,
            kind,
            start,
            end: start,
            attributes,
            events,
            error: None,
        });
        Ok((
            Request::from_parts(parts, body),
            InFlight {
                span,
                route,
                observation,
            },
        ))
    }

    /// Closes the span with the answer's status and hands it to the exporter.
    pub fn end(&self, flight: InFlight, response: &Response<Body>) {
        let (Some(mut span), Some(exporter)) = (flight.span, &self.inner.exporter) else {
            return;
        };
        let status = response.status();
        span.end = SystemTime::now();
        span.attributes.push((
            "http.response.status_code",
            i64::from(status.as_u16()).into(),
        ));
        let failed =
            status.is_server_error() || (span.kind == Kind::Client && status.is_client_error());
        if failed {
            span.error = Some(status.as_u16().to_string());
            span.attributes
                .push(("error.type", status.as_u16().to_string().into()));
        }
        exporter.record(span);
    }
}
