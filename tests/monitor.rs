//! The monitor against a running mesh: a control plane and two sidecars of one service, each
//! with its app, on 127.0.0.1. The JSON merges both sidecars; then headless Chromium (Debian's
//! `chromium`, driven by tests/monitor/browser.mjs through playwright-core) checks the pages a
//! user sees: counts after N instances, an instance with its path, the retry button, and a
//! sidecar killed while the page is open. Screenshots land in target/monitor-screenshots/.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/announced.rs"]
mod announced;
#[path = "support/cluster.rs"]
mod cluster;
#[path = "../proxy/tests/support/client.rs"]
mod http;
#[path = "support/sidecar.rs"]
mod sidecar;
#[path = "../proxy/tests/support/worker.rs"]
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use cluster::Cluster;
use http::api;
use hyper::Method;
use serde_json::{Value, json};
use sidecar::Sidecar;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use worker::Mode;

const UP: Duration = Duration::from_secs(60);
/// Instances per sidecar: small orders that complete on shop-1, that fail to charge on shop-2,
/// and large ones that wait for approval on shop-1.
const COMPLETED: usize = 6;
const FAILING: usize = 4;
const WAITING: usize = 2;

const JOBS: &str = "[jobs]\ncharge = { http = \"POST /jobs/charge\", timeout = \"5s\", retries = 1, backoff = \"10ms\" }\n";

async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    f: impl FnMut() -> F,
) -> T {
    http::until(what, UP, f).await
}

async fn count(local: SocketAddr, state: &str) -> usize {
    let (_, list) = api(
        local,
        Method::GET,
        &format!("/v1/instances?state={state}&limit=1000"),
        None,
    )
    .await;
    list["items"].as_array().map_or(0, Vec::len)
}

async fn start(local: SocketAddr, order: &str, amount: u32) {
    let body = json!({"process": "monitored", "business_key": order, "variables": {"orderId": order, "amount": amount}});
    let (status, answer) = api(
        local,
        Method::POST,
        "/v1/instances",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/monitor-screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_show_a_running_mesh_in_chromium() {
    let cp = Cluster::up(
        1,
        &["--trace-url", "http://tracing.test/trace/{trace_id}"],
        UP,
    )
    .await;
    let cp_addr: SocketAddr = cp.addrs[&1].parse().unwrap();
    let cp_url = format!("http://{cp_addr}");
    let dir = tempfile::tempdir().unwrap();
    let app1 = worker::start().await;
    let app2 = worker::start().await;
    let shop1 = Sidecar::spawn_named(
        &dir.path().join("shop-1"),
        "shop",
        Some("shop-1"),
        app1.addr,
        &cp_url,
        JOBS,
    );
    let mut shop2 = Sidecar::spawn_named(
        &dir.path().join("shop-2"),
        "shop",
        Some("shop-2"),
        app2.addr,
        &cp_url,
        JOBS,
    );
    cp.client(1)
        .deploy(
            Bytes::from_static(include_bytes!("fixtures/monitored.bpmn")),
            Some("shop"),
        )
        .await
        .unwrap();
    for side in [&shop1, &shop2] {
        until("the sidecar runs the model", || async {
            let (_, models) = api(side.local, Method::GET, "/v1/models", None).await;
            (models["models"][0]["process"] == "monitored").then_some(())
        })
        .await;
    }

    app2.set(Mode::Fail);
    for i in 0..COMPLETED {
        start(shop1.local, &format!("small-{i}"), 20).await;
    }
    for i in 0..WAITING {
        start(shop1.local, &format!("large-{i}"), 5000).await;
    }
    for i in 0..FAILING {
        start(shop2.local, &format!("failing-{i}"), 20).await;
    }
    until("shop-1's small orders complete", || async {
        (count(shop1.local, "completed").await == COMPLETED).then_some(())
    })
    .await;
    until("shop-2's orders stop at an incident", || async {
        (count(shop2.local, "incident").await == FAILING).then_some(())
    })
    .await;

    // The JSON the pages are built from: both sidecars merged.
    let (status, model) = api(cp_addr, Method::GET, "/v1/monitor/models/monitored", None).await;
    assert_eq!(status, 200, "{model}");
    assert_eq!(
        model["instances"],
        json!({"active": WAITING, "completed": COMPLETED, "incident": FAILING, "cancelled": 0})
    );
    assert_eq!(model["elements"]["charge"]["incidents"], FAILING, "{model}");
    assert_eq!(
        model["elements"]["check"]["completed"],
        COMPLETED + WAITING + FAILING
    );
    assert_eq!(model["elements"]["approve"]["active"], WAITING);
    assert!(model["elements"]["check"]["p95_ms"].is_number(), "{model}");
    let total = (COMPLETED + WAITING + FAILING) as f64;
    assert_eq!(model["flows"]["big"]["taken"], WAITING);
    let share = model["flows"]["big"]["share"].as_f64().unwrap();
    assert!((share - WAITING as f64 / total).abs() < 1e-9, "{share}");
    let sidecars: Vec<&str> = model["sidecars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(sidecars, ["ok", "ok"]);

    // Paging walks every instance once, across both sidecars.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = api(
            cp_addr,
            Method::GET,
            &format!("/v1/monitor/models/monitored/instances?limit=3&cursor={cursor}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => cursor = next.replace('@', "%40").replace(',', "%2C"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an instance was listed twice: {seen:?}"
    );
    assert_eq!(seen.len(), COMPLETED + WAITING + FAILING);
    let (status, refused) = api(
        cp_addr,
        Method::GET,
        "/v1/monitor/models/monitored/instances?state=stuck",
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        refused["detail"].as_str().unwrap().contains("not one of"),
        "{refused}"
    );

    // The browser. shop-2's app works again: the retry button's resolution then completes.
    app2.set(Mode::Complete);
    let expect = json!({
        "active": WAITING,
        "completed": COMPLETED,
        "incident": FAILING,
        "elements": ["placed", "check", "large", "approve", "join", "charge", "done"],
        "trace_prefix": "http://tracing.test/trace/",
        "killed": "shop-2",
        "survivor_completed": COMPLETED,
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/monitor/browser.mjs");
    let mut browser = tokio::process::Command::new("node")
        .arg(&script)
        .args(["--base", &cp_url, "--process", "monitored"])
        .args(["--expect", &expect.to_string()])
        .arg("--out")
        .arg(screenshots())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (tests/install-deps.sh installs playwright-core and chromium)");
    let mut stdin = browser.stdin.take().unwrap();
    let mut out = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut last = String::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(120), out.next_line())
        .await
        .expect("the browser script went quiet")
        .unwrap()
    {
        if line == "ready-to-kill" {
            shop2.kill9();
            stdin.write_all(b"killed\n").await.unwrap();
        }
        last = line;
    }
    let done = browser.wait_with_output().await.unwrap();
    assert!(
        done.status.success(),
        "the browser test failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    let measured: Value = serde_json::from_str(&last).expect("the script's measurements");
    let shown = measured["killed_shown_ms"].as_u64().unwrap();
    assert!(
        shown <= 5000,
        "the killed sidecar was shown after {shown} ms"
    );
    for shot in [
        "models",
        "model",
        "instance",
        "instance-retried",
        "sidecar-down",
    ] {
        assert!(
            screenshots().join(format!("{shot}.png")).exists(),
            "{shot}.png"
        );
    }

    // The killed sidecar's instance cannot be opened; the page says why.
    let (status, gone) = api(cp_addr, Method::GET, "/v1/monitor/instances/1@shop-2", None).await;
    assert_eq!(status, 503, "{gone}");
    assert!(
        gone["detail"].as_str().unwrap().contains("shop-2"),
        "{gone}"
    );
}
