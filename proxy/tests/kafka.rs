//! The Kafka-protocol proxy against a real Kafka-protocol broker (librdkafka's mock cluster)
//! with real clients (confluent-kafka and kcat) bootstrapped through the sidecar: clients see
//! only sidecar addresses; every codec round-trips byte for byte with a `traceparent` added
//! that matches a PRODUCER span; idempotent, transactional and `acks=0` producers and a
//! rebalancing consumer group work; malformed frames close only their own connection; client
//! connections beyond `max_connections` wait until one closes; and a choreography of Kafka
//! apps is tracked by its model, each order one trace.

// Tests run on tokio's test runtimes, which have a time driver of their own.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mesh.rs"]
mod harness;
#[path = "support/client.rs"]
mod http;
#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/worker.rs"]
mod worker;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use flowmesh_proxy::Handle;
use kafka::{MockCluster, Tansu, client, kcat, unb64};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UP: Duration = Duration::from_secs(30);
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// The broker a test runs against: librdkafka's mock cluster (three brokers, topics created
/// on first use) or tansu (one broker, topics created up front).
enum Broker {
    Mock(MockCluster),
    Tansu(Tansu),
}

impl Broker {
    fn brokers(&self) -> Vec<String> {
        match self {
            Broker::Mock(m) => m.brokers.clone(),
            Broker::Tansu(t) => vec![t.bootstrap.clone()],
        }
    }

    fn topic(&self, name: &str) {
        if let Broker::Tansu(t) = self {
            t.create_topic(name);
        }
    }
}

struct Setup {
    cluster: Broker,
    handle: Handle,
    bootstrap: String,
    sink: otlp::Sink,
    _stop: harness::Stopper,
    _dir: tempfile::TempDir,
}

/// A mock cluster of three brokers and a sidecar whose `[kafka] bootstrap` names only the
/// first of them: the others are learned from metadata.
async fn setup() -> Setup {
    setup_with(Broker::Mock(MockCluster::start(3))).await
}

async fn setup_with(cluster: Broker) -> Setup {
    let sink = otlp::sink().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "kafka = \"127.0.0.1:0\"\n[kafka]\nbootstrap = \"{}\"\n[telemetry]\notlp_endpoint = \"http://{}\"\nmax_queued_spans = 100000\n",
        cluster.brokers()[0],
        sink.addr
    );
    let (handle, stop, _task) =
        harness::standalone("orders", "127.0.0.1:9".parse().unwrap(), dir.path(), &extra).await;
    let bootstrap = handle
        .kafka
        .as_ref()
        .expect("kafka proxy")
        .bootstrap
        .to_string();
    Setup {
        cluster,
        handle,
        bootstrap,
        sink,
        _stop: stop,
        _dir: dir,
    }
}

impl Setup {
    fn kafka(&self) -> &flowmesh_proxy::kafka::Handle {
        self.handle.kafka.as_ref().unwrap()
    }

    async fn produce(&self, topic: &str, extra: &[&str]) -> Value {
        self.cluster.topic(topic);
        let mut args = vec!["produce", &self.bootstrap, topic];
        args.extend_from_slice(extra);
        let out = client(&args).await;
        assert_eq!(out["failed"], Value::Array(vec![]), "{topic}: {out}");
        out
    }

    async fn consume(&self, topic: &str, count: usize) -> Vec<Value> {
        let n = count.to_string();
        let group = format!("g-{topic}");
        let out = client(&[
            "consume",
            &self.bootstrap,
            topic,
            "--count",
            &n,
            "--group",
            &group,
        ])
        .await;
        let records = out["records"].as_array().cloned().unwrap_or_default();
        assert_eq!(records.len(), count, "{topic}: {out}");
        records
    }

    /// Waits until the OTLP receiver holds a span that `pick` accepts.
    async fn span(&self, what: &str, pick: impl Fn(&otlp::Received) -> bool) -> otlp::Received {
        let pick = &pick;
        http::until(&format!("a span: {what}"), UP, || async move {
            self.sink
                .spans
                .lock()
                .unwrap()
                .iter()
                .find(|s| pick(s))
                .cloned()
        })
        .await
    }
}

fn value_of(i: usize) -> Vec<u8> {
    let mut v = format!("{{\"orderId\": \"o-{i}\", \"n\": {i}}}").into_bytes();
    v.extend_from_slice(&[0, 255, (i % 256) as u8]);
    v
}

fn headers(record: &Value) -> Vec<(String, Vec<u8>)> {
    record["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_owned(),
                unb64(&h[1]).unwrap_or_default(),
            )
        })
        .collect()
}

fn traceparent(record: &Value) -> Option<(String, String)> {
    let all: Vec<Vec<u8>> = headers(record)
        .into_iter()
        .filter(|(k, _)| k == "traceparent")
        .map(|(_, v)| v)
        .collect();
    assert!(all.len() <= 1, "more than one traceparent: {record}");
    let text = String::from_utf8(all.first()?.clone()).unwrap();
    let parts: Vec<&str> = text.split('-').collect();
    Some((parts[1].to_owned(), parts[2].to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_bootstrapped_through_the_sidecar_see_only_sidecar_brokers() {
    let s = setup().await;
    let listing = kcat(&["-b", &s.bootstrap, "-L", "-J"], "").await;
    let metadata: Value = serde_json::from_str(&listing).unwrap();
    let brokers: Vec<String> = metadata["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(brokers.len(), 3, "{listing}");
    let locals: BTreeSet<String> = s
        .kafka()
        .brokers()
        .iter()
        .map(|(_, local)| local.to_string())
        .collect();
    for b in &brokers {
        assert!(
            locals.contains(b),
            "{b} is not a sidecar listener ({locals:?})"
        );
        assert!(!s.cluster.brokers().contains(b), "{b} is a real broker");
    }
    let upstreams: BTreeSet<String> = s.kafka().brokers().into_iter().map(|(u, _)| u).collect();
    assert_eq!(
        upstreams,
        s.cluster.brokers().into_iter().collect::<BTreeSet<_>>(),
        "every broker is learned from metadata, not only the bootstrap one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_byte_for_byte_with_a_traceparent_that_matches_its_span() {
    codecs_round_trip(&setup().await).await;
}

/// tansu is a Kafka-compatible broker of its own (not librdkafka's code on the other end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_through_tansu_too() {
    codecs_round_trip(&setup_with(Broker::Tansu(Tansu::start())).await).await;
}

async fn codecs_round_trip(s: &Setup) {
    const N: usize = 30;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("orders-{codec}");
        s.produce(
            &topic,
            &["--codec", codec, "--count", &N.to_string(), "--idempotent"],
        )
        .await;
        let records = s.consume(&topic, N).await;
        let mut keys = BTreeSet::new();
        for r in &records {
            let key = String::from_utf8(unb64(&r["key"]).unwrap()).unwrap();
            let i: usize = key.trim_start_matches('k').parse().unwrap();
            assert!(keys.insert(i), "{codec}: record {i} twice");
            assert_eq!(
                unb64(&r["value"]).unwrap(),
                value_of(i),
                "{codec}: value of {i}"
            );
            let h = headers(r);
            let (names, values): (Vec<&str>, Vec<&[u8]>) =
                h.iter().map(|(k, v)| (k.as_str(), v.as_slice())).unzip();
            assert_eq!(
                names,
                ["h", "h", "bin", "empty", "traceparent"],
                "{codec}: headers in order, duplicates kept"
            );
            assert_eq!(
                &values[..4],
                &[&b"1"[..], b"2", &[0, 1, 254], b""],
                "{codec}"
            );
        }
        // The first record's context is a PRODUCER span the receiver got, and its consumer
        // continued it.
        let (trace, span) = traceparent(&records[0]).unwrap();
        let producer = s
            .span(&format!("{codec} producer span {span}"), |x| {
                x.span_id == span
            })
            .await;
        assert_eq!(
            (producer.trace_id.as_str(), producer.kind),
            (trace.as_str(), PRODUCER)
        );
        assert_eq!(producer.name, format!("send {topic}"));
        assert_eq!(producer.attributes["messaging.system"], "kafka");
        assert_eq!(producer.attributes["messaging.destination.name"], topic);
        let consumer = s
            .span(&format!("{codec} consumer span"), |x| x.parent == span)
            .await;
        assert_eq!(
            (consumer.kind, consumer.trace_id.as_str()),
            (CONSUMER, trace.as_str())
        );
        assert_eq!(consumer.name, format!("process {topic}"));
        assert_eq!(
            consumer.attributes["messaging.consumer.group.name"],
            format!("g-{topic}")
        );
        assert!(consumer.attributes.contains_key("messaging.kafka.offset"));
    }

    // A record that carries its own context keeps it, untouched.
    let mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    s.produce(
        "orders-traced",
        &["--codec", "zstd", "--count", "5", "--traceparent", mine],
    )
    .await;
    for r in s.consume("orders-traced", 5).await {
        assert_eq!(
            traceparent(&r),
            Some((
                "0af7651916cd43dd8448eb211c80319c".into(),
                "b7ad6b7169203331".into()
            ))
        );
    }
    let producer = s
        .span("the producer span under the app's context", |x| {
            x.parent == "b7ad6b7169203331" && x.kind == PRODUCER
        })
        .await;
    assert_eq!(producer.trace_id, "0af7651916cd43dd8448eb211c80319c");

    // kcat (librdkafka 2.0) through the sidecar, with its own codecs and duplicate headers.
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("kcat-{codec}");
        s.cluster.topic(&topic);
        kcat(
            &[
                "-b",
                &s.bootstrap,
                "-P",
                "-t",
                &topic,
                "-z",
                codec,
                "-K",
                ":",
                "-H",
                "a=1",
                "-H",
                "a=2",
            ],
            "k1:first\nk2:second\n",
        )
        .await;
        let out = kcat(
            &[
                "-b",
                &s.bootstrap,
                "-C",
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
                "-c",
                "2",
                "-f",
                "%k|%s|%h\n",
            ],
            "",
        )
        .await;
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        assert_eq!(lines.len(), 2, "{codec}: {out}");
        for (line, (k, v)) in lines.iter().zip([("k1", "first"), ("k2", "second")]) {
            let prefix = format!("{k}|{v}|a=1,a=2,traceparent=00-");
            assert!(line.starts_with(&prefix), "{codec}: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_transactional_and_unacknowledged_producers_work_and_a_group_rebalances() {
    let s = setup().await;
    let out = s
        .produce(
            "bulk",
            &["--codec", "lz4", "--count", "10000", "--idempotent"],
        )
        .await;
    assert_eq!(out["sent"], 10000, "{out}");
    let records = s.consume("bulk", 10000).await;
    let keys: BTreeSet<String> = records
        .iter()
        .map(|r| String::from_utf8(unb64(&r["key"]).unwrap()).unwrap())
        .collect();
    assert_eq!(keys.len(), 10000, "every record once");

    let out = s
        .produce(
            "tx",
            &["--codec", "zstd", "--count", "100", "--transactional"],
        )
        .await;
    assert_eq!(out["sent"], 100, "{out}");
    assert_eq!(s.consume("tx", 100).await.len(), 100);

    // acks=0: no response is waited for (a proxy that waited would hang the client). Every
    // record passes the sidecar; delivery itself is at most once by definition (under CI load
    // the client's connections close right after sending, and the mock broker once dropped a
    // batch that way), so the consumer must see records but need not see all of them.
    let out = s.produce("fire", &["--count", "100", "--acks", "0"]).await;
    assert_eq!(out["sent"], 100, "{out}");
    let passed = "flowmesh_kafka_records_total{direction=\"produce\",topic=\"fire\"} 100";
    http::until("the sidecar passed all 100 acks=0 records", UP, || async {
        s.handle.metrics.render().contains(passed).then_some(())
    })
    .await;
    let n = "100".to_owned();
    let got = client(&[
        "consume",
        &s.bootstrap,
        "fire",
        "--count",
        &n,
        "--group",
        "g-fire",
        "--timeout",
        "10",
    ])
    .await;
    assert!(
        !got["records"].as_array().unwrap().is_empty(),
        "no acks=0 record arrived: {got}"
    );

    let out = client(&[
        "group",
        &s.bootstrap,
        "bulk",
        "--group",
        "pair",
        "--count",
        "10000",
    ])
    .await;
    assert_eq!(out["seen"], 10000, "{out}");
    for member in ["a", "b"] {
        assert!(
            !out["assignments"][member].as_array().unwrap().is_empty(),
            "member {member} was never assigned: {out}"
        );
    }
    assert_eq!(s.kafka().group_of("rdkafka").as_deref(), Some("pair"));
}

/// Sends `bytes` on a new connection and reports whether the sidecar closed it.
async fn closed_after(addr: SocketAddr, bytes: &[u8], half_close: bool) -> bool {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(bytes).await.unwrap();
    if half_close {
        c.shutdown().await.unwrap();
    }
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(UP, c.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

fn request(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes());
    frame.extend_from_slice(body);
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_their_own_connection() {
    let s = setup().await;
    let addr = s.kafka().bootstrap;
    // A healthy client stays connected throughout.
    let mut healthy = TcpStream::connect(addr).await.unwrap();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "a 2 GiB length prefix",
            i32::MAX.to_be_bytes().to_vec(),
            false,
        ),
        ("a negative length", (-4i32).to_be_bytes().to_vec(), false),
        (
            "a frame shorter than a header",
            vec![0, 0, 0, 3, 0, 18, 0],
            false,
        ),
        ("an unknown api key", request(999, 0, b""), false),
        ("a withheld api", request(55, 0, b""), false),
        ("a truncated frame", vec![0, 0, 0, 100, 0, 18, 0, 3], true),
        (
            "a Produce whose records are garbage",
            request(
                0,
                9,
                &[
                    0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0,
                    0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                ],
            ),
            false,
        ),
    ];
    for (what, bytes, half) in cases {
        assert!(closed_after(addr, &bytes, half).await, "{what}: not closed");
    }
    // ApiVersions v0 on the healthy connection still gets its answer.
    healthy.write_all(&request(18, 0, b"")).await.unwrap();
    let mut size = [0u8; 4];
    healthy.read_exact(&mut size).await.unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    healthy.read_exact(&mut body).await.unwrap();
    assert_eq!(&body[..4], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(&body[4..6], &[0, 0], "no error");
    // And new clients are served.
    let listing = kcat(&["-b", &s.bootstrap, "-L", "-J"], "").await;
    assert!(listing.contains("\"brokers\""), "{listing}");
    let metrics = s.handle.metrics.render();
    for reason in [
        "frame_size",
        "malformed",
        "unknown_api",
        "not_offered",
        "malformed_records",
    ] {
        assert!(
            metrics.contains(&format!(
                "flowmesh_kafka_connections_closed_total{{reason=\"{reason}\"}}"
            )),
            "{reason} not counted:\n{metrics}"
        );
    }
}

/// The correlation id of the next answer on `c`, if one comes within `within`.
async fn answer(c: &mut TcpStream, within: Duration) -> Option<[u8; 4]> {
    tokio::time::timeout(within, async {
        let mut size = [0u8; 4];
        c.read_exact(&mut size).await.unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        c.read_exact(&mut body).await.unwrap();
        [body[0], body[1], body[2], body[3]]
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_connections_beyond_max_connections_wait_until_one_closes() {
    let cluster = MockCluster::start(1);
    let sink = otlp::sink().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "kafka = \"127.0.0.1:0\"\n[kafka]\nbootstrap = \"{}\"\nmax_connections = 2\n[telemetry]\notlp_endpoint = \"http://{}\"\n",
        cluster.brokers[0], sink.addr
    );
    let (handle, _stop, _task) =
        harness::standalone("orders", "127.0.0.1:9".parse().unwrap(), dir.path(), &extra).await;
    let kafka = handle.kafka.as_ref().expect("kafka proxy");
    let addr = kafka.bootstrap;
    // A broker listener opens: idle, it must not take one of the two places.
    let listing = kcat(&["-b", &addr.to_string(), "-L", "-J"], "").await;
    assert!(listing.contains("\"brokers\""), "{listing}");
    assert_eq!(kafka.brokers().len(), 1);
    let api_versions = request(18, 0, b"");
    let id = Some(7i32.to_be_bytes());

    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(&api_versions).await.unwrap();
    assert_eq!(answer(&mut first, UP).await, id);
    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(&api_versions).await.unwrap();
    assert_eq!(answer(&mut second, UP).await, id, "two places, two served");
    // The third connection is made but not served while both are open: without the limit
    // its answer comes within milliseconds.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(&api_versions).await.unwrap();
    assert_eq!(answer(&mut third, Duration::from_millis(500)).await, None);
    first.write_all(&api_versions).await.unwrap();
    assert_eq!(
        answer(&mut first, UP).await,
        id,
        "the first is still served"
    );
    drop(first);
    assert_eq!(
        answer(&mut third, UP).await,
        id,
        "served once the first closed"
    );
}

/// Waits until the sidecar at `local` lists `process` at `path` (`/v1/deployments`: it follows
/// the model's bindings; `/v1/models`: its engine runs it).
async fn deployed(local: SocketAddr, path: &str, process: &str) {
    http::until(&format!("{process} deployed at {local}"), UP, || async {
        let (_, models) = http::api(local, hyper::Method::GET, path, None).await;
        models["models"]
            .as_array()?
            .iter()
            .any(|m| m["process"] == process)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_choreography_is_tracked_by_its_model_and_each_order_is_one_trace() {
    choreography(Broker::Mock(MockCluster::start(3))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_choreography_is_tracked_over_tansu_too() {
    choreography(Broker::Tansu(Tansu::start())).await;
}

async fn choreography(cluster: Broker) {
    const ORDERS: usize = 20;
    const TOPIC: &str = "flowing-retail";
    cluster.topic(TOPIC);
    let sink = otlp::sink().await;
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = harness::control_plane(dir.path()).await;
    let mut sidecars = Vec::new();
    for service in ["checkout", "payment", "inventory", "shipping"] {
        let extra = format!(
            "kafka = \"127.0.0.1:0\"\n[kafka]\nbootstrap = \"{}\"\n[telemetry]\notlp_endpoint = \"http://{}\"\nmax_queued_spans = 100000\n",
            cluster.brokers().join(","),
            sink.addr
        );
        let app: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let (handle, stop, _task) =
            harness::sidecar(service, app, &dir.path().join(service), &cp, &extra).await;
        sidecars.push((service, handle, stop));
    }
    let track = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/order-fulfillment/models/track.bpmn"),
    )
    .unwrap();
    flowmesh_control_plane::client::Client::new(&cp, Some(harness::TOKEN.to_owned()))
        .deploy(bytes::Bytes::from(track), Some("checkout"))
        .await
        .unwrap();
    deployed(sidecars[0].1.local, "/v1/models", "order-tracking").await;
    for (_, h, _) in &sidecars {
        deployed(h.local, "/v1/deployments", "order-tracking").await;
        harness::routable(h, "checkout", true).await;
    }
    let bootstrap =
        |i: usize| -> String { sidecars[i].1.kafka.as_ref().unwrap().bootstrap.to_string() };
    let n = ORDERS.to_string();
    let steps = [
        (1, "OrderPlacedEvent", "PaymentReceivedEvent"),
        (2, "PaymentReceivedEvent", "GoodsFetchedEvent"),
        (3, "GoodsFetchedEvent", "GoodsShippedEvent"),
    ];
    let apps: Vec<kafka::App> = steps
        .iter()
        .map(|(i, wanted, answer)| {
            kafka::App::start(&["step", &bootstrap(*i), TOPIC, &n, wanted, answer])
        })
        .collect();
    let placed = kafka::App::start(&["checkout", &bootstrap(0), TOPIC, &n])
        .finish()
        .await;
    assert_eq!(placed["placed"], ORDERS, "{placed}");
    for app in apps {
        let out = app.finish().await;
        assert_eq!(out["answered"], ORDERS, "{out}");
    }

    // Every order's tracking instance completes at the owner.
    let checkout = sidecars[0].1.local;
    http::until("every order's tracking instance completed", UP, || async {
        let (_, list) = http::api(
            checkout,
            hyper::Method::GET,
            "/v1/instances?process=order-tracking&state=completed&limit=1000",
            None,
        )
        .await;
        (list["items"].as_array()?.len() == ORDERS).then_some(())
    })
    .await;

    // Every order is one trace across the four services and their Kafka hops.
    for i in 0..ORDERS {
        let order = format!("order-{i}");
        let deadline = Instant::now() + UP;
        loop {
            let spans: Vec<otlp::Received> = sink
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| {
                    s.attributes.get("messaging.kafka.message.key") == Some(&order)
                        || s.attributes.get("flowmesh.business_key") == Some(&order)
                })
                .cloned()
                .collect();
            let producers: BTreeSet<&str> = spans
                .iter()
                .filter(|s| s.kind == PRODUCER)
                .map(|s| s.service.as_str())
                .collect();
            let consumers = spans.iter().filter(|s| s.kind == CONSUMER).count();
            let process = spans.iter().any(|s| s.name == "process order-tracking");
            if producers.len() == 4 && consumers >= 3 && process {
                let traces: BTreeSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
                assert_eq!(
                    traces.len(),
                    1,
                    "{order} spans {} traces: {spans:#?}",
                    traces.len()
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{order}: producers {producers:?}, {consumers} consumers, process span {process}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_bus_carries_events_to_subscribers_in_order_across_a_restart() {
    let cluster = MockCluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let bus = format!(
        "kafka = \"127.0.0.1:0\"\n[kafka]\nbootstrap = \"{}\"\n[bus]\nkind = \"kafka\"\n",
        cluster.bootstrap()
    );
    let nowhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let (orders, _o_stop, _o_task) =
        harness::standalone("orders", nowhere, &dir.path().join("orders"), &bus).await;
    let app = worker::start().await;
    app.set_events(worker::Mode::Fail);
    let billing_dir = dir.path().join("billing");
    let billing_config = format!("{bus}{}", worker::SUBSCRIBED);
    let (billing, mut b_stop, b_task) =
        harness::standalone("billing", app.addr, &billing_dir, &billing_config).await;

    for i in 0..20 {
        let event = serde_json::json!({
            "specversion": "1.0", "id": format!("e-{i}"), "source": "/orders", "type": "Tick",
            "partitionkey": format!("p{}", i % 2), "data": {"n": i},
        });
        let (status, body) = http::post(orders.local, "/v1/events/retail", &event).await;
        assert_eq!(status, 202, "{body}");
    }

    // On the cluster: one record per event, keyed by its partition key, with its context.
    let out = client(&[
        "consume",
        &cluster.bootstrap(),
        "retail",
        "--count",
        "20",
        "--group",
        "audit",
    ])
    .await;
    let records = out["records"].as_array().unwrap();
    assert_eq!(records.len(), 20, "{out}");
    for r in records {
        let value: Value = serde_json::from_slice(&unb64(&r["value"]).unwrap()).unwrap();
        assert_eq!(value["type"], "Tick");
        let key = String::from_utf8(unb64(&r["key"]).unwrap()).unwrap();
        assert_eq!(value["partitionkey"], key.as_str());
        assert!(traceparent(r).is_some(), "{r}");
    }

    // The app refuses: billing's group took every event into its inbox anyway (offsets are
    // stored once the inbox holds them), and it waits there across a restart.
    let inbox_depth = |h: Handle| async move {
        h.runtime
            .as_ref()?
            .snapshots()
            .read_with(|_, txn| flowmesh_proxy::runtime::inbox::depth(txn))
            .ok()
    };
    http::until("billing's inbox holds the 20 events", UP, || async {
        (inbox_depth(billing.clone()).await == Some(20)).then_some(())
    })
    .await;
    b_stop.stop();
    b_task.await.unwrap();
    let (_billing, _b_stop2, _b_task2) =
        harness::standalone("billing", app.addr, &billing_dir, &billing_config).await;
    app.set_events(worker::Mode::Complete);
    let taken = http::until("the 20 events arrived", UP, || async {
        let taken = app.events();
        (taken.len() >= 20).then_some(taken)
    })
    .await;
    let mut ids: Vec<&str> = taken
        .iter()
        .map(|t| t.event["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every event, none twice");
    for p in ["p0", "p1"] {
        let order: Vec<i64> = taken
            .iter()
            .filter(|t| t.event["partitionkey"] == p)
            .map(|t| t.event["data"]["n"].as_i64().unwrap())
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted, "partition {p} out of order");
    }
}
