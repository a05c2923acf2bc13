//! The sidecar's metrics, in Prometheus text on the local API's `/metrics`: requests and their
//! latency by direction, route and status, open connections, and dropped spans.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fnv::FnvHashMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    direction: &'static str,
    /// The observation rule's route template, or `other`: never the raw path (its values
    /// would make a series per order id).
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    direction: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    direction: &'static str,
    message: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job_type: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PassedOverLabels {
    service: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    direction: &'static str,
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabels {
    message: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~26 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 19,
    ))
}

/// The series of one direction, route and status.
#[derive(Clone)]
struct RequestSeries {
    requests: Counter,
    latency: Histogram,
}

impl RequestSeries {
    fn count(&self, took: Duration) {
        self.requests.inc();
        self.latency.observe(took.as_secs_f64());
    }
}

/// One connection's counting of its requests. It keeps the series its last answer went to:
/// a keep-alive client mostly repeats its route and status, and is then counted without the
/// cache's lock and lookups.
pub struct Recorder {
    metrics: Metrics,
    direction: &'static str,
    last: Option<(u16, Cow<'static, str>, RequestSeries)>,
}

impl Recorder {
    pub fn new(metrics: Metrics, direction: &'static str) -> Recorder {
        Recorder {
            metrics,
            direction,
            last: None,
        }
    }

    /// Counts one answer, as [`Metrics::request`] does.
    pub fn request(&mut self, route: Cow<'static, str>, status: u16, took: Duration) {
        if let Some((last_status, last_route, series)) = &self.last
            && *last_status == status
            && *last_route == route
        {
            series.count(took);
            return;
        }
        let series = self.metrics.series(self.direction, &route, status);
        series.count(took);
        self.last = Some((status, route, series));
    }
}

/// Series by direction and status, then route: found with a short hash of borrowed labels,
/// where the families hash owned labels (an allocation) with SipHash, once each.
type SeriesCache = FnvHashMap<(&'static str, u16), FnvHashMap<String, RequestSeries>>;

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    series: RwLock<SeriesCache>,
    connections: Family<DirectionLabels, Gauge>,
    refused: Family<RefusedLabels, Counter>,
    observations: Family<MessageLabels, Counter>,
    missed: Family<MessageLabels, Counter>,
    dropped_spans: Counter,
    engine_batches: Counter,
    engine_commands: Counter,
    engine_commit: Histogram,
    jobs: Family<JobLabels, Counter>,
    unroutable: Family<NameLabels, Counter>,
    dead_letters: Family<TopicLabels, Counter>,
    passed_over: Family<PassedOverLabels, Counter>,
    passed_on: Family<ServiceLabels, Counter>,
    instances: Family<StateLabels, Gauge>,
    kafka_records: Family<RecordLabels, Counter>,
    kafka_injected: Counter,
    kafka_closed: Family<ReasonLabels, Counter>,
    incidents: Gauge,
    outbox: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// A cheap handle to the metrics.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

/// Counts an open connection until dropped.
pub struct OpenConnection {
    gauge: Gauge,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("flowmesh");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let connections = Family::<DirectionLabels, Gauge>::default();
        let dropped_spans = Counter::default();
        let refused = Family::<RefusedLabels, Counter>::default();
        let observations = Family::<MessageLabels, Counter>::default();
        let missed = Family::<MessageLabels, Counter>::default();
        registry.register(
            "observations",
            "Requests that matched an HTTP binding and became a BPMN message, by direction and message",
            observations.clone(),
        );
        registry.register(
            "observations_missed",
            "Requests that matched a binding's route but carried no correlation key",
            missed.clone(),
        );
        registry.register(
            "refused_requests",
            "HTTP/1 requests the sidecar refused itself before any of them reached an upstream (bad framing, hostile heads, slow heads), by reason",
            refused.clone(),
        );
        registry.register(
            "requests",
            "HTTP requests the sidecar carried, by direction, route and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's head to its response head, by direction, route and status",
            latency.clone(),
        );
        registry.register(
            "open_connections",
            "Client connections open now, by listener",
            connections.clone(),
        );
        registry.register(
            "dropped_spans",
            "Spans dropped because the export queue was full or the collector refused them",
            dropped_spans.clone(),
        );
        let engine_batches = Counter::default();
        let engine_commands = Counter::default();
        let engine_commit = latency_histogram();
        let jobs = Family::<JobLabels, Counter>::default();
        let unroutable = Family::<NameLabels, Counter>::default();
        let dead_letters = Family::<TopicLabels, Counter>::default();
        let instances = Family::<StateLabels, Gauge>::default();
        let incidents = Gauge::default();
        let outbox = Gauge::default();
        registry.register(
            "instances",
            "Process instances this sidecar runs, by state (active, completed, incident, cancelled)",
            instances.clone(),
        );
        registry.register("incidents", "Open incidents", incidents.clone());
        registry.register(
            "outbox_depth",
            "Messages and events waiting for a peer sidecar to acknowledge them",
            outbox.clone(),
        );
        registry.register(
            "dead_letters",
            "Events the app did not take within their subscription's attempts, by topic",
            dead_letters.clone(),
        );
        registry.register(
            "engine_batches",
            "Engine transactions committed (each one fsync)",
            engine_batches.clone(),
        );
        registry.register(
            "engine_commands",
            "Engine commands processed (instances started, jobs reported, messages, ticks)",
            engine_commands.clone(),
        );
        registry.register(
            "engine_commit_seconds",
            "Time to process and durably commit one batch of engine commands",
            engine_commit.clone(),
        );
        registry.register(
            "jobs",
            "Job attempts by job type and outcome (completed, error, failed, no_worker)",
            jobs.clone(),
        );
        registry.register(
            "messages_unroutable",
            "Messages no service waits for (kept until one does), by message name",
            unroutable.clone(),
        );
        let passed_over = Family::<PassedOverLabels, Counter>::default();
        let passed_on = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "instances_passed_over",
            "Times an instance of another service was passed over for 5 s, by service and reason (refused: it refused a connection; failures: five gateway failures in a row)",
            passed_over.clone(),
        );
        registry.register(
            "requests_passed_on",
            "Requests sent on to another instance after one refused the connection, by service",
            passed_on.clone(),
        );
        let kafka_records = Family::<RecordLabels, Counter>::default();
        let kafka_injected = Counter::default();
        let kafka_closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "kafka_records",
            "Kafka records the sidecar saw, by direction (produce, fetch) and topic",
            kafka_records.clone(),
        );
        registry.register(
            "kafka_traceparent_injected",
            "Produced Kafka records that got a traceparent header from the sidecar",
            kafka_injected.clone(),
        );
        registry.register(
            "kafka_connections_closed",
            "Kafka client connections the sidecar closed on a protocol error, by reason",
            kafka_closed.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                kafka_records,
                kafka_injected,
                kafka_closed,
                engine_batches,
                engine_commands,
                engine_commit,
                jobs,
                unroutable,
                dead_letters,
                passed_over,
                passed_on,
                instances,
                incidents,
                outbox,
                registry,
                requests,
                latency,
                series: RwLock::default(),
                connections,
                refused,
                observations,
                missed,
                dropped_spans,
            }),
        }
    }

    pub fn request(&self, direction: &'static str, route: &str, status: u16, took: Duration) {
        self.series(direction, route, status).count(took);
    }

    /// The series of a label set, made the first time it is seen.
    fn series(&self, direction: &'static str, route: &str, status: u16) -> RequestSeries {
        if let Ok(cache) = self.inner.series.read()
            && let Some(series) = cache
                .get(&(direction, status))
                .and_then(|routes| routes.get(route))
        {
            return series.clone();
        }
        self.new_series(direction, route, status)
    }

    /// Creates the series of a label set seen for the first time (a bounded set: routes are
    /// binding templates or `other`).
    fn new_series(&self, direction: &'static str, route: &str, status: u16) -> RequestSeries {
        let labels = RequestLabels {
            direction,
            route: route.to_owned(),
            status,
        };
        let series = RequestSeries {
            requests: self.inner.requests.get_or_create(&labels).clone(),
            latency: self.inner.latency.get_or_create(&labels).clone(),
        };
        if let Ok(mut cache) = self.inner.series.write() {
            cache
                .entry((direction, status))
                .or_default()
                .insert(labels.route, series.clone());
        }
        series
    }

    pub fn connection_opened(&self, direction: &'static str) -> OpenConnection {
        let gauge = self
            .inner
            .connections
            .get_or_create(&DirectionLabels { direction })
            .clone();
        gauge.inc();
        OpenConnection { gauge }
    }

    pub fn request_refused(&self, direction: &'static str, reason: &'static str) {
        self.inner
            .refused
            .get_or_create(&RefusedLabels { direction, reason })
            .inc();
    }

    pub fn observed(&self, direction: &'static str, message: &str) {
        self.inner
            .observations
            .get_or_create(&MessageLabels {
                direction,
                message: message.to_owned(),
            })
            .inc();
    }

    pub fn observation_missed(&self, direction: &'static str, message: &str) {
        self.inner
            .missed
            .get_or_create(&MessageLabels {
                direction,
                message: message.to_owned(),
            })
            .inc();
    }

    pub fn engine_batch(&self, commands: usize, took: Duration) {
        self.inner.engine_batches.inc();
        self.inner.engine_commands.inc_by(commands as u64);
        self.inner.engine_commit.observe(took.as_secs_f64());
    }

    pub fn job(&self, job_type: &str, outcome: &'static str) {
        self.inner
            .jobs
            .get_or_create(&JobLabels {
                job_type: job_type.to_owned(),
                outcome,
            })
            .inc();
    }

    /// An instance entered `to` (from `from`, unless it is new).
    pub fn instance_moved(&self, from: Option<&'static str>, to: &'static str) {
        if let Some(f) = from {
            self.inner
                .instances
                .get_or_create(&StateLabels { state: f })
                .dec();
        }
        self.inner
            .instances
            .get_or_create(&StateLabels { state: to })
            .inc();
    }

    /// Sets the gauges from stored state (at start).
    pub fn runtime_state(&self, by_state: &[(&'static str, i64)], incidents: i64, outbox: i64) {
        for (state, n) in by_state {
            self.inner
                .instances
                .get_or_create(&StateLabels { state })
                .set(*n);
        }
        self.inner.incidents.set(incidents);
        self.inner.outbox.set(outbox);
    }

    pub fn incidents_changed(&self, by: i64) {
        self.inner.incidents.inc_by(by);
    }

    pub fn outbox_changed(&self, by: i64) {
        self.inner.outbox.inc_by(by);
    }

    pub fn dead_letter(&self, topic: &str) {
        self.inner
            .dead_letters
            .get_or_create(&TopicLabels {
                topic: topic.to_owned(),
            })
            .inc();
    }

    pub fn kafka_records(&self, direction: &'static str, topic: &str, n: u64) {
        self.inner
            .kafka_records
            .get_or_create(&RecordLabels {
                direction,
                topic: topic.to_owned(),
            })
            .inc_by(n);
    }

    /// An instance of `service` passed over for a while: `refused` a connection, or too many
    /// gateway `failures` in a row.
    pub fn passed_over(&self, service: &str, reason: &'static str) {
        self.inner
            .passed_over
            .get_or_create(&PassedOverLabels {
                service: service.to_owned(),
                reason,
            })
            .inc();
    }

    /// A request to `service` sent on to another instance after one refused the connection.
    pub fn passed_on(&self, service: &str) {
        self.inner
            .passed_on
            .get_or_create(&ServiceLabels {
                service: service.to_owned(),
            })
            .inc();
    }

    pub fn kafka_injected(&self, n: u64) {
        self.inner.kafka_injected.inc_by(n);
    }

    pub fn kafka_closed(&self, reason: &'static str) {
        self.inner
            .kafka_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn unroutable(&self, message: &str) {
        self.inner
            .unroutable
            .get_or_create(&NameLabels {
                message: message.to_owned(),
            })
            .inc();
    }

    pub fn span_dropped(&self, n: u64) {
        self.inner.dropped_spans.inc_by(n);
    }

    pub fn dropped_spans(&self) -> u64 {
        self.inner.dropped_spans.get()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_connections_and_drops_show_in_the_text() {
        let m = Metrics::new();
        m.request("inbound", "other", 200, Duration::from_millis(3));
        m.request("inbound", "other", 200, Duration::from_millis(5));
        let open = m.connection_opened("inbound");
        m.span_dropped(2);
        let text = m.render();
        assert!(
            text.contains(
                r#"flowmesh_requests_total{direction="inbound",route="other",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"flowmesh_open_connections{direction="inbound"} 1"#),
            "{text}"
        );
        assert!(text.contains("flowmesh_dropped_spans_total 2"), "{text}");
        // Each label set is its own series, however the lookups are cached.
        m.request("inbound", "/orders/{id}", 200, Duration::from_millis(1));
        m.request("inbound", "other", 503, Duration::from_millis(1));
        m.request("mesh", "other", 200, Duration::from_millis(1));
        shows(
            &m,
            &[
                r#"flowmesh_requests_total{direction="inbound",route="other",status="200"} 2"#,
                r#"flowmesh_requests_total{direction="inbound",route="/orders/{id}",status="200"} 1"#,
                r#"flowmesh_requests_total{direction="inbound",route="other",status="503"} 1"#,
                r#"flowmesh_requests_total{direction="mesh",route="other",status="200"} 1"#,
            ],
        );
        drop(open);
        assert!(
            m.render()
                .contains(r#"flowmesh_open_connections{direction="inbound"} 0"#)
        );
    }

    #[test]
    fn a_connections_recorder_counts_each_answer_in_its_own_series() {
        let m = Metrics::new();
        let mut counted = Recorder::new(m.clone(), "inbound");
        let mut other = Recorder::new(m.clone(), "inbound");
        let ms = Duration::from_millis(1);
        counted.request(Cow::Borrowed("other"), 200, ms);
        counted.request(Cow::Borrowed("other"), 200, ms);
        counted.request(Cow::Owned("/orders/{id}".to_owned()), 200, ms);
        counted.request(Cow::Borrowed("other"), 503, ms);
        counted.request(Cow::Borrowed("other"), 200, ms);
        other.request(Cow::Borrowed("other"), 200, ms);
        m.request("inbound", "other", 200, ms);
        shows(
            &m,
            &[
                r#"flowmesh_requests_total{direction="inbound",route="other",status="200"} 5"#,
                r#"flowmesh_requests_total{direction="inbound",route="/orders/{id}",status="200"} 1"#,
                r#"flowmesh_requests_total{direction="inbound",route="other",status="503"} 1"#,
                r#"flowmesh_request_duration_seconds_count{direction="inbound",route="other",status="200"} 5"#,
            ],
        );
    }

    /// Asserts that the rendered text has each of `lines`.
    fn shows(m: &Metrics, lines: &[&str]) {
        let text = m.render();
        for line in lines {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
