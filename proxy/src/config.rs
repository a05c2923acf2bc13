//! The sidecar's configuration: one TOML file (`flowmesh proxy --config FILE.toml`), every key
//! documented in docs/configuration.md. Unknown keys are refused (a typo must not silently fall
//! back to a default), and every refusal names the key and what it wants.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

mod jobs;

pub use jobs::{HttpTarget, JobSpec, PublishSpec, Subscription};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole file, with defaults filled in.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The service this sidecar stands next to.
    pub service: String,
    /// Unique per sidecar; default: `{service}-{hostname}-{inbound port}`.
    #[serde(default)]
    pub instance: Option<String>,
    /// Where the sidecar keeps its redb file(s).
    pub data_dir: PathBuf,
    /// Control-plane nodes to talk to (any of them; followers forward).
    #[serde(default)]
    pub control_plane: Vec<String>,
    /// A file holding the bearer token for control-plane writes.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Runtime worker threads: 1 (default) runs everything on one thread; 0 = one per core.
    #[serde(default = "one")]
    pub threads: usize,
    pub app: App,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default)]
    pub telemetry: Telemetry,
    #[serde(default)]
    pub limits: Limits,
    /// Job type → how this sidecar performs it.
    #[serde(default)]
    pub jobs: std::collections::BTreeMap<String, JobSpec>,
    /// Event topics delivered to the app.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    #[serde(default)]
    pub runtime: Runtime,
    /// The Kafka cluster the app's client reaches through the sidecar (absent: no Kafka proxy).
    #[serde(default)]
    pub kafka: Option<Kafka>,
    /// What carries the events of `/v1/events/{topic}`, subscriptions and publish jobs.
    #[serde(default)]
    pub bus: Bus,
    /// How the outbound proxy treats instances that fail.
    #[serde(default)]
    pub balance: Balance,
}

/// How the outbound proxy (and the outbox's delivery) treats instances that fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Balance {
    /// Gateway failures (502, 503, 504) in a row after which an instance is passed over; 0:
    /// never for failures (a refused connection still is).
    pub pass_over_after_failures: u32,
    /// How long an instance that refused a connection, or failed too often, is passed over.
    #[serde(deserialize_with = "duration")]
    pub pass_over_for: Duration,
}

/// The longest `balance.pass_over_for` taken: longer is a typo more likely than a wish.
const MAX_PASS_OVER: Duration = Duration::from_secs(3600);

impl Default for Balance {
    fn default() -> Balance {
        Balance {
            pass_over_after_failures: 5,
            pass_over_for: Duration::from_secs(5),
        }
    }
}

/// The event bus.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bus {
    #[serde(default)]
    pub kind: BusKind,
    /// The consumer group of this service's subscriptions on the Kafka bus; default
    /// `flowmesh-{service}`.
    #[serde(default)]
    pub group: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// Sidecar to sidecar through the durable outbox (no broker).
    #[default]
    Mesh,
    /// The `[kafka]` cluster: this sidecar's own producer and consumer group.
    Kafka,
}

/// The Kafka-protocol proxy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kafka {
    /// The real cluster's bootstrap brokers, `"HOST:PORT,HOST:PORT"`.
    #[serde(deserialize_with = "broker_list")]
    pub bootstrap: Vec<String>,
    /// The host clients are told for the sidecar's broker listeners; default: `listen.kafka`'s
    /// IP (127.0.0.1 when it is 0.0.0.0).
    #[serde(default)]
    pub advertised_host: Option<String>,
    /// Largest Kafka request or response frame, in bytes (larger: the connection is closed).
    #[serde(default = "Kafka::default_max_frame")]
    pub max_frame_bytes: usize,
    /// Requests per client connection waiting for the broker's answer at most.
    #[serde(default = "Kafka::default_in_flight")]
    pub max_in_flight: usize,
    /// Client connections open at once across the Kafka listeners; further ones wait in the
    /// kernel's backlog until one closes.
    #[serde(default = "Kafka::default_max_connections")]
    pub max_connections: usize,
    /// Time to open a connection to a broker.
    #[serde(default = "Kafka::default_connect", deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Add a `traceparent` header to produced records that have none.
    #[serde(default = "yes")]
    pub inject_traceparent: bool,
    /// A record batch that the header would make larger than this is passed unchanged (the
    /// broker's `message.max.bytes`).
    #[serde(default = "Kafka::default_max_batch")]
    pub max_batch_bytes: usize,
    /// Fetched records bound by a model become messages too (for producers without a
    /// sidecar); by default only produced records do.
    #[serde(default)]
    pub observe_fetched: bool,
}

impl Kafka {
    fn default_max_frame() -> usize {
        100 * 1024 * 1024
    }
    fn default_in_flight() -> usize {
        1024
    }
    fn default_max_connections() -> usize {
        10_000
    }
    fn default_connect() -> Duration {
        Duration::from_secs(10)
    }
    fn default_max_batch() -> usize {
        1_048_588
    }
}

fn yes() -> bool {
    true
}

fn broker_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let text = String::deserialize(d)?;
    let brokers: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect();
    if brokers.is_empty() {
        return Err(serde::de::Error::custom(
            "kafka.bootstrap is empty: name the cluster's brokers, e.g. \"kafka-1:9092,kafka-2:9092\"",
        ));
    }
    for b in &brokers {
        let port = b
            .rsplit_once(':')
            .and_then(|(h, p)| (!h.is_empty()).then_some(p));
        if port.and_then(|p| p.parse::<u16>().ok()).is_none() {
            return Err(serde::de::Error::custom(format!(
                "kafka.bootstrap: '{b}' is not HOST:PORT (for example \"kafka-1:9092\")"
            )));
        }
    }
    Ok(brokers)
}

/// The workflow runtime.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    /// Most engine commands committed in one transaction (one fsync).
    pub max_batch: usize,
    /// Commands waiting for the engine at most; more are refused with 503.
    pub max_queued: usize,
    /// Largest body the local API takes, in bytes (more: 413).
    pub max_request_bytes: usize,
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime {
            max_batch: 512,
            max_queued: 8192,
            max_request_bytes: 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Where the app listens (`host:port`).
    #[serde(deserialize_with = "socket_addr")]
    pub address: SocketAddr,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// The local API: `/v1/...`, `/metrics`, `/healthz`, `/readyz`.
    #[serde(deserialize_with = "socket_addr")]
    pub local: SocketAddr,
    /// Callers reach the app through here.
    #[serde(deserialize_with = "socket_addr")]
    pub inbound: SocketAddr,
    /// The app reaches other services through here.
    #[serde(deserialize_with = "socket_addr")]
    pub outbound: SocketAddr,
    /// Other sidecars reach this one here.
    #[serde(deserialize_with = "socket_addr")]
    pub mesh: SocketAddr,
    /// The mesh address other sidecars are told (in the registry); default: `mesh`, with an
    /// unspecified IP replaced by the one this host uses to reach the control plane.
    #[serde(deserialize_with = "optional_socket_addr")]
    pub mesh_advertise: Option<SocketAddr>,
    /// The app's Kafka client bootstraps here (used when `[kafka]` is set).
    #[serde(deserialize_with = "socket_addr")]
    pub kafka: SocketAddr,
}

impl Default for Listen {
    fn default() -> Listen {
        Listen {
            local: SocketAddr::from(([127, 0, 0, 1], 15000)),
            inbound: SocketAddr::from(([0, 0, 0, 0], 15001)),
            outbound: SocketAddr::from(([127, 0, 0, 1], 15002)),
            mesh: SocketAddr::from(([0, 0, 0, 0], 15003)),
            mesh_advertise: None,
            kafka: SocketAddr::from(([127, 0, 0, 1], 19092)),
        }
    }
}

/// Where spans go, and how traces are stitched.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    /// OTLP/HTTP base URL (`/v1/traces` is appended); default `$OTEL_EXPORTER_OTLP_ENDPOINT`;
    /// `"none"` turns export off.
    pub otlp_endpoint: Option<String>,
    /// Spans waiting for export at most; more are dropped and counted.
    pub max_queued_spans: usize,
    /// How long the trace context of a business key is kept for stitching.
    #[serde(deserialize_with = "duration")]
    pub stitch_ttl: Duration,
}

impl Default for Telemetry {
    fn default() -> Telemetry {
        Telemetry {
            otlp_endpoint: None,
            max_queued_spans: 4096,
            stitch_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Telemetry {
    /// The OTLP endpoint in effect in this process: [`Telemetry::endpoint`] with
    /// `$OTEL_EXPORTER_OTLP_ENDPOINT`, as both the start and `proxy --check` read it.
    pub fn endpoint_in_effect(&self) -> Result<Option<String>, String> {
        self.endpoint(std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
    }

    /// The OTLP endpoint in effect, given the environment's `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (`None`: no export). The file's key was checked when it was read; the environment's
    /// value is checked here, and a refusal names it.
    pub fn endpoint(&self, env: Option<String>) -> Result<Option<String>, String> {
        let from_env = self.otlp_endpoint.is_none();
        let Some(chosen) = self.otlp_endpoint.clone().or(env) else {
            return Ok(None);
        };
        let given = chosen.trim();
        let chosen = given.trim_end_matches('/').to_owned();
        if chosen.is_empty() || chosen == "none" {
            return Ok(None);
        }
        if from_env && crate::telemetry::export::traces_uri(&chosen).is_none() {
            return Err(format!(
                "$OTEL_EXPORTER_OTLP_ENDPOINT '{given}' must be an http:// URL with a host (like http://127.0.0.1:4318) or \"none\" (telemetry.otlp_endpoint, which takes its place when set, is not set)"
            ));
        }
        Ok(Some(chosen))
    }
}

/// What the proxy accepts before it refuses, and how long it waits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most header fields in one request (more: 431).
    pub max_header_count: usize,
    /// Most bytes of a request head, request line and headers together (more: 431).
    pub max_header_bytes: usize,
    /// Largest request body, in bytes; 0 = no limit (more: 413).
    pub max_body_bytes: u64,
    /// Most bytes of a body held in memory for an observation rule that reads it.
    pub max_buffered_body_bytes: usize,
    /// Time a client has to send a request head (then: 408 and close).
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// Time an idle keep-alive connection stays open.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Time the upstream has to answer with a response head (then: 504).
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Time to open a connection upstream (then: 502).
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Most concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Most open client connections per listener (more wait to be accepted).
    pub max_connections: usize,
    /// Time in-flight requests get to finish on shutdown.
    #[serde(deserialize_with = "duration")]
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_count: 100,
            max_header_bytes: 64 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            max_buffered_body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(2),
            max_concurrent_streams: 256,
            max_connections: 10_000,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

fn one() -> usize {
    1
}

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "'{text}' is not an IP address and port (for example \"127.0.0.1:8080\" or \"[::1]:8080\")"
        ))
    })
}

fn optional_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    socket_addr(d).map(Some)
}

/// Durations are written as `"10s"`, `"250ms"`, `"1m 30s"`.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    let parsed: jiff::SignedDuration = text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "'{text}' is not a duration (write it like \"10s\", \"250ms\" or \"1m 30s\")"
        ))
    })?;
    Duration::try_from(parsed)
        .map_err(|_| serde::de::Error::custom(format!("'{text}' is negative")))
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|message| Error::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses and checks the text of a config file.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if !valid_name(&self.service) {
            return Err(format!(
                "service = \"{}\": use letters, digits, '-', '_' and '.' (it names the service in the mesh)",
                self.service
            ));
        }
        if let Some(instance) = &self.instance
            && !valid_name(instance)
        {
            return Err(format!(
                "instance = \"{instance}\": use letters, digits, '-', '_' and '.'"
            ));
        }
        for url in &self.control_plane {
            if !url.starts_with("http://") {
                return Err(format!(
                    "control_plane: '{url}' must start with http:// (for example \"http://127.0.0.1:7700\")"
                ));
            }
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && endpoint.trim() != "none"
            && crate::telemetry::export::traces_uri(endpoint.trim()).is_none()
        {
            return Err(format!(
                "telemetry.otlp_endpoint: '{endpoint}' must be an http:// URL with a host (like http://127.0.0.1:4318) or \"none\""
            ));
        }
        let l = &self.limits;
        if l.max_header_count == 0 || l.max_header_bytes < 1024 {
            return Err(
                "limits: max_header_count must be at least 1 and max_header_bytes at least 1024"
                    .to_owned(),
            );
        }
        if l.max_concurrent_streams == 0 || l.max_connections == 0 {
            return Err(
                "limits: max_concurrent_streams and max_connections must be at least 1".to_owned(),
            );
        }
        if self.balance.pass_over_for.is_zero() || self.balance.pass_over_for > MAX_PASS_OVER {
            return Err(
                "balance.pass_over_for must be more than 0 and at most an hour (like \"5s\"); to pass no instance over for its failures, set balance.pass_over_after_failures = 0"
                    .to_owned(),
            );
        }
        if self.runtime.max_batch == 0 || self.runtime.max_queued == 0 {
            return Err("runtime: max_batch and max_queued must be at least 1".to_owned());
        }
        jobs::check(&self.jobs, &self.subscriptions)?;
        if self.bus.kind == BusKind::Kafka && self.kafka.is_none() {
            return Err(
                "bus.kind = \"kafka\" needs the cluster: add [kafka] with bootstrap = \"HOST:PORT,...\""
                    .to_owned(),
            );
        }
        if let Some(k) = &self.kafka
            && (k.max_frame_bytes < 1024 || k.max_in_flight == 0 || k.max_connections == 0)
        {
            return Err(
                "kafka: max_frame_bytes must be at least 1024, max_in_flight and max_connections at least 1"
                    .to_owned(),
            );
        }
        let listen = &self.listen;
        let ports = [
            ("local", listen.local),
            ("inbound", listen.inbound),
            ("outbound", listen.outbound),
            ("mesh", listen.mesh),
            ("kafka", listen.kafka),
        ];
        for (i, (a, addr_a)) in ports.iter().enumerate() {
            for (b, addr_b) in &ports[i + 1..] {
                if addr_a.port() != 0 && addr_a == addr_b {
                    return Err(format!("listen.{a} and listen.{b} are both {addr_a}"));
                }
            }
        }
        Ok(())
    }

    /// The instance name in effect.
    pub fn instance_name(&self, inbound_port: u16) -> String {
        self.instance.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| valid_name(h))
                .unwrap_or_else(|| "host".to_owned());
            format!("{}-{host}-{inbound_port}", self.service)
        })
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(name_char)
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
service = "payment"
data_dir = "/tmp/x"
[app]
address = "127.0.0.1:8082"
"#;

    #[test]
    fn the_contract_example_parses_and_defaults_fill_the_rest() {
        let full = r#"
service = "payment"
instance = "payment-1"
data_dir = "/var/lib/flowmesh/payment"
control_plane = ["http://127.0.0.1:7700"]
token_file = "/etc/flowmesh/token"

[app]
address = "127.0.0.1:8082"

[listen]
local = "127.0.0.1:15000"
inbound = "0.0.0.0:15001"
outbound = "127.0.0.1:15002"
mesh = "0.0.0.0:15003"

[telemetry]
otlp_endpoint = "http://127.0.0.1:4318"
"#;
        let c = Config::parse(full).unwrap();
        assert_eq!(c.instance_name(1), "payment-1");
        assert_eq!(c.listen.mesh.port(), 15003);
        assert_eq!(c.limits.max_header_count, 100);
        assert_eq!(c.threads, 1);
        assert_eq!(c.telemetry.max_queued_spans, 4096);
        assert_eq!(c.telemetry.stitch_ttl, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(
            c.telemetry.endpoint(None).unwrap().as_deref(),
            Some("http://127.0.0.1:4318")
        );
        assert_eq!(
            c.telemetry
                .endpoint(Some("https://ignored".into()))
                .unwrap()
                .as_deref(),
            Some("http://127.0.0.1:4318"),
            "the file's key wins over the environment"
        );

        let m = Config::parse(MINIMAL).unwrap();
        assert_eq!(m.listen.inbound.port(), 15001);
        assert!(m.instance_name(15001).starts_with("payment-"));
        assert!(m.instance_name(15001).ends_with("-15001"));
        assert_eq!(m.telemetry.endpoint(None), Ok(None));
        assert_eq!(
            m.telemetry
                .endpoint(Some("http://otel:4318/".into()))
                .unwrap()
                .as_deref(),
            Some("http://otel:4318")
        );
        let refused = m
            .telemetry
            .endpoint(Some("https://otel:4318".into()))
            .unwrap_err();
        assert!(
            refused.contains("$OTEL_EXPORTER_OTLP_ENDPOINT 'https://otel:4318'"),
            "{refused}"
        );
        // No host: refused before start, naming the variable, not left for the exporter.
        let refused = m.telemetry.endpoint(Some("http://".into())).unwrap_err();
        assert!(
            refused.contains(
                "$OTEL_EXPORTER_OTLP_ENDPOINT 'http://' must be an http:// URL with a host"
            ),
            "{refused}"
        );
    }

    #[test]
    fn the_kafka_section_reads_a_broker_list_and_fills_defaults() {
        let c = Config::parse(&format!(
            "{MINIMAL}[kafka]\nbootstrap = \"kafka-1:9092, 10.0.0.2:9093\"\n"
        ))
        .unwrap();
        let k = c.kafka.expect("kafka");
        assert_eq!(k.bootstrap, ["kafka-1:9092", "10.0.0.2:9093"]);
        assert!(k.inject_traceparent);
        assert_eq!(k.max_frame_bytes, 100 * 1024 * 1024);
        assert_eq!(k.max_connections, 10_000);
        assert_eq!(c.listen.kafka.port(), 19092);
        assert!(Config::parse(MINIMAL).unwrap().kafka.is_none());
    }

    #[test]
    fn durations_and_none_read_as_written() {
        let c = Config::parse(&format!(
            "{MINIMAL}[limits]\nrequest_timeout = \"1m 30s\"\nheader_read_timeout = \"250ms\"\n[telemetry]\notlp_endpoint = \"none\"\n"
        ))
        .unwrap();
        assert_eq!(c.limits.request_timeout, Duration::from_secs(90));
        let b = Config::parse(&format!(
            "{MINIMAL}[balance]\npass_over_after_failures = 0\npass_over_for = \"30s\"\n"
        ))
        .unwrap()
        .balance;
        assert_eq!(
            (b.pass_over_after_failures, b.pass_over_for),
            (0, Duration::from_secs(30))
        );
        assert_eq!(Config::parse(MINIMAL).unwrap().balance, Balance::default());
        assert_eq!(c.limits.header_read_timeout, Duration::from_millis(250));
        assert_eq!(c.telemetry.endpoint(Some("http://x:1".into())), Ok(None));
    }

    #[test]
    fn the_documented_example_parses_and_shows_the_defaults() {
        let page = include_str!("../../docs/configuration.md");
        let example = page
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/configuration.md starts with a TOML example");
        let c = Config::parse(example).unwrap();
        assert_eq!(c.service, "payment");
        // The sections marked "defaults shown" show the defaults.
        let d = Limits::default();
        let l = &c.limits;
        assert_eq!(
            (l.max_header_count, l.max_header_bytes, l.max_body_bytes),
            (d.max_header_count, d.max_header_bytes, d.max_body_bytes)
        );
        assert_eq!(
            (l.header_read_timeout, l.idle_timeout, l.request_timeout),
            (d.header_read_timeout, d.idle_timeout, d.request_timeout)
        );
        assert_eq!(
            (l.connect_timeout, l.drain_timeout, l.max_connections),
            (d.connect_timeout, d.drain_timeout, d.max_connections)
        );
        assert_eq!(
            (l.max_buffered_body_bytes, l.max_concurrent_streams),
            (d.max_buffered_body_bytes, d.max_concurrent_streams)
        );
        let r = Runtime::default();
        assert_eq!(
            (
                c.runtime.max_batch,
                c.runtime.max_queued,
                c.runtime.max_request_bytes
            ),
            (r.max_batch, r.max_queued, r.max_request_bytes)
        );
        assert_eq!(c.balance, Balance::default());
    }

    #[test]
    fn refusals_name_the_key_and_what_it_wants() {
        let cases = [
            (
                MINIMAL.replace("[app]", "servce = \"x\"\n[app]"),
                "unknown field `servce`",
            ),
            (
                MINIMAL.replace("127.0.0.1:8082", "localhost"),
                "not an IP address and port",
            ),
            (
                format!("{MINIMAL}[limits]\nidle_timeout = \"soon\"\n"),
                "not a duration",
            ),
            (
                MINIMAL.replace("\"payment\"", "\"pay ment\""),
                "service = \"pay ment\"",
            ),
            (
                format!("control_plane = [\"https://cp:7700\"]\n{MINIMAL}"),
                "must start with http://",
            ),
            (
                format!("{MINIMAL}[telemetry]\notlp_endpoint = \"http://\"\n"),
                "telemetry.otlp_endpoint: 'http://' must be an http:// URL with a host",
            ),
            (
                MINIMAL.replace("[app]\naddress = \"127.0.0.1:8082\"\n", ""),
                "missing field `app`",
            ),
            (
                format!("{MINIMAL}[listen]\nlocal = \"127.0.0.1:1\"\ninbound = \"127.0.0.1:1\"\n"),
                "listen.local and listen.inbound",
            ),
            (
                format!("{MINIMAL}[kafka]\nbootstrap = \" , \"\n"),
                "kafka.bootstrap is empty",
            ),
            (
                format!("{MINIMAL}[kafka]\nbootstrap = \"kafka-1\"\n"),
                "'kafka-1' is not HOST:PORT",
            ),
            (
                format!("{MINIMAL}[balance]\npass_over_for = \"0s\"\n"),
                "balance.pass_over_for must be more than 0",
            ),
            (
                format!("{MINIMAL}[balance]\npass_over_for = \"2h\"\n"),
                "balance.pass_over_for must be more than 0 and at most an hour",
            ),
            (
                format!("{MINIMAL}[balance]\npass_over_after = 3\n"),
                "unknown field `pass_over_after`",
            ),
            (
                format!("{MINIMAL}[kafka]\nbootstrap = \"k:9092\"\nmax_frame_bytes = 10\n"),
                "max_frame_bytes must be at least 1024",
            ),
            (
                format!("{MINIMAL}[kafka]\nbootstrap = \"k:9092\"\nmax_connections = 0\n"),
                "max_connections at least 1",
            ),
            (
                format!("{MINIMAL}[bus]\nkind = \"kafka\"\n"),
                "bus.kind = \"kafka\" needs the cluster",
            ),
            (
                format!("{MINIMAL}[bus]\nkind = \"nats\"\n"),
                "unknown variant `nats`",
            ),
        ];
        for (text, says) in cases {
            let e = Config::parse(&text).unwrap_err();
            assert!(e.contains(says), "{e}\nshould say: {says}");
        }
    }
}
