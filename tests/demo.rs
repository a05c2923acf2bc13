//! `flowmesh demo` as a user runs it: the real binary starts a control plane, five sidecars
//! and five apps. Every stage with 50 orders ends as expected, every order is one trace across
//! the services (decoded by an OTLP receiver built on the official protobuf messages), the
//! rollout splits and then moves new orders, and `--stage all --orders 20 --exit` exits 0, on
//! the mesh bus and on Kafka (tansu), where the apps speak Kafka through their sidecars.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../proxy/tests/support/kafka.rs"]
mod kafka;
#[path = "../proxy/tests/support/otlp.rs"]
mod otlp;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use flowmesh_example_order_fulfillment::Behaviour;
use serde_json::Value;

/// One demo at a time: each runs eleven processes whose timers (2 s goods, 3 s slow paths)
/// leave about a second of margin, which three demos at once on two cores would eat.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn demo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .arg("demo")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_whole_demo_with_20_orders_exits_0() {
    let _serial = SERIAL.blocking_lock();
    let (ok, out, err) = demo(&["--stage", "all", "--orders", "20", "--exit"]);
    assert!(ok, "{out}\n{err}");
    for stage in ["track", "act", "orchestrate", "change"] {
        assert!(out.contains(&format!("stage {stage} done")), "{out}");
    }
    assert!(out.contains("ORDERS  COMPLETED"), "{out}");
}

fn elements(stage: &Value) -> BTreeMap<(u64, String), u64> {
    stage["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                (
                    e["version"].as_u64().unwrap(),
                    e["element"].as_str().unwrap().to_owned(),
                ),
                e["completed"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn completed(stage: &Value, element: &str) -> u64 {
    elements(stage)
        .iter()
        .filter(|((_, e), _)| e == element)
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_with_50_orders_ends_as_expected_in_one_trace_per_order() {
    let _serial = SERIAL.lock().await;
    let sink = otlp::sink().await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let endpoint = format!("http://{}", sink.addr);
    let (ok, out, err) = tokio::task::spawn_blocking({
        let report = report.display().to_string();
        move || {
            demo(&[
                "--orders",
                "50",
                "--rate",
                "25",
                "--exit",
                "--otlp-endpoint",
                &endpoint,
                "--report",
                &report,
            ])
        }
    })
    .await
    .unwrap();
    assert!(ok, "{out}\n{err}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let stages: BTreeMap<String, Value> = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap().to_owned(), s.clone()))
        .collect();
    let b = Behaviour::demo();
    for (name, stage) in &stages {
        let orders = stage["orders"].as_array().unwrap();
        assert_eq!(orders.len(), 50, "{name}");
        for o in orders {
            assert_eq!(o["ok"], true, "{name}: {o}");
            assert_eq!(o["instances"], 1, "{name}: {o}");
        }
    }

    // The per-element counts are what the orders' behaviour implies.
    let ids = |stage: &str| -> Vec<String> {
        stages[stage]["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(completed(&stages["track"], "order-delivered"), 50);
    assert_eq!(completed(&stages["track"], "goods-shipped"), 50);
    let slow = ids("act").iter().filter(|o| b.slow_payment(o)).count() as u64;
    assert!(slow > 0);
    assert_eq!(completed(&stages["act"], "overdue-notified"), slow);
    assert_eq!(completed(&stages["act"], "order-delivered"), 50);
    let late = ids("orchestrate")
        .iter()
        .filter(|o| b.slow_inventory(o))
        .count() as u64;
    assert!(late > 0);
    assert_eq!(completed(&stages["orchestrate"], "refund-payment"), late);
    assert_eq!(completed(&stages["orchestrate"], "order-cancelled"), late);
    assert_eq!(completed(&stages["orchestrate"], "order-done"), 50 - late);

    // Stage change: at 50/50 both versions take new orders; at 0/100 only v2 does.
    let change = stages["change"]["orders"].as_array().unwrap();
    let v2 = change
        .iter()
        .map(|o| o["version"].as_u64().unwrap())
        .max()
        .unwrap();
    let split: BTreeSet<u64> = change
        .iter()
        .filter(|o| o["weights"] == "50/50")
        .map(|o| o["version"].as_u64().unwrap())
        .collect();
    assert_eq!(split, BTreeSet::from([v2 - 1, v2]), "{change:?}");
    assert!(
        change
            .iter()
            .filter(|o| o["weights"] == "0/100")
            .all(|o| o["version"] == v2)
    );

    // One trace per order: its instance's trace holds the HTTP call that placed it (checkout's
    // sidecar), the events' PRODUCER and CONSUMER spans, and the BPMN element spans of every
    // process that took part; no element span of the order is in another trace.
    let spans = sink.all();
    for (name, stage) in &stages {
        for o in stage["orders"].as_array().unwrap() {
            let order = o["order"].as_str().unwrap();
            let trace = o["trace_id"].as_str().unwrap();
            let elements: BTreeSet<&str> = spans
                .iter()
                .filter(|s| {
                    s.attributes
                        .get("flowmesh.business_key")
                        .map(String::as_str)
                        == Some(order)
                })
                .map(|s| s.trace_id.as_str())
                .collect();
            assert_eq!(elements, BTreeSet::from([trace]), "{name} {order}");
            let in_trace: Vec<&otlp::Received> =
                spans.iter().filter(|s| s.trace_id == trace).collect();
            let kinds: BTreeSet<(&str, i32)> = in_trace
                .iter()
                .map(|s| (s.service.as_str(), s.kind))
                .collect();
            assert!(
                kinds.contains(&("checkout", 2)),
                "{name} {order}: no HTTP span: {kinds:?}"
            );
            assert!(
                kinds.iter().any(|(_, k)| *k == 4),
                "{name} {order}: no PRODUCER span"
            );
            assert!(
                kinds.iter().any(|(_, k)| *k == 5),
                "{name} {order}: no CONSUMER span"
            );
            let services: BTreeSet<&str> = in_trace.iter().map(|s| s.service.as_str()).collect();
            for s in ["checkout", "order", "payment", "inventory", "shipping"] {
                assert!(
                    services.contains(s),
                    "{name} {order}: {s} missing from {services:?}"
                );
            }
        }
    }
}

/// A GET over a plain TCP connection (HTTP/1.0, the answer read to its end).
fn get_json(addr: &str, path: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// Whether process `pid` has ended (gone, or a zombie its parent has not reaped yet): then
/// its files, and the locks on them, are released.
fn ended(pid: u32) -> bool {
    let leader_gone = std::fs::read_to_string(format!("/proc/{pid}/status")).map_or(true, |s| {
        s.lines()
            .any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X')))
    });
    // A killed leader turns zombie while its other threads are still exiting, and the files
    // they share (the redb lock) are closed only when the last one is gone.
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    leader_gone && threads <= 1
}

/// Kills (SIGKILL) the process whose command line mentions `needle`, once; its pid.
fn kill9(needle: &str) -> u32 {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(" proxy ") && cmdline.contains(needle) {
            let status = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            return pid;
        }
    }
    panic!("no process runs {needle}");
}

struct Restarted(std::process::Child);

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_order_sidecar_killed_during_orchestration_loses_and_repeats_no_order() {
    use std::io::{BufRead, BufReader};
    let _serial = SERIAL.blocking_lock();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .args([
            "demo",
            "--stage",
            "orchestrate",
            "--orders",
            "50",
            "--rate",
            "10",
            "--exit",
            "--report",
        ])
        .arg(&report)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut data = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(d) = line.trim().strip_prefix("logs and data: ") {
            data = d.to_owned();
        }
        if line.starts_with("== stage orchestrate") {
            break;
        }
    }
    assert!(!data.is_empty(), "the demo did not say where its data is");
    let rest =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    // The order sidecar's local API, from its configuration file.
    let config = format!("{data}/order.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let local = text
        .lines()
        .find_map(|l| l.strip_prefix("local = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_owned();
    // Mid-stage: some orders are under way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let started = get_json(&local, "/v1/instances?process=order&limit=1000")
            .and_then(|v| v["items"].as_array().map(Vec::len))
            .unwrap_or(0);
        if started >= 10 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no orders started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = kill9(&config);
    while !ended(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the killed sidecar never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // The same sidecar again (same data, same instance name), on fresh ports: its old ones may
    // have been taken meanwhile. The demo finds it through the registry.
    let fresh = text
        .lines()
        .map(|l| {
            if l.starts_with("local = ") || l.starts_with("inbound = ") {
                let key = l.split(' ').next().unwrap_or_default();
                format!("{key} = \"127.0.0.1:0\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let fresh_config = dir.path().join("order-restarted.toml");
    std::fs::write(&fresh_config, fresh).unwrap();
    let mut restarted = Restarted(
        Command::new(env!("CARGO_BIN_EXE_flowmesh"))
            .args(["proxy", "--config"])
            .arg(&fresh_config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = restarted.0.stderr.take().unwrap();
    let mut announced = BufReader::new(stderr).lines();
    let mut said = Vec::new();
    let line = announced
        .by_ref()
        .map_while(Result::ok)
        .find(|l| {
            said.push(l.clone());
            l.contains(", local API ")
        })
        .unwrap_or_else(|| {
            panic!(
                "the restarted sidecar did not start; it said:\n{}",
                said.join("\n")
            )
        });
    std::thread::spawn(move || for _ in announced {});
    let new_local = line
        .rsplit(", local API ")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    while get_json(&new_local, "/v1/models").is_none() {
        assert!(
            matches!(restarted.0.try_wait(), Ok(None)),
            "the restarted sidecar exited"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted sidecar never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let out = rest.join().unwrap();
    assert!(status.success(), "{out}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let orders = report["stages"][0]["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 50);
    for o in orders {
        assert_eq!(o["ok"], true, "{o}");
        assert_eq!(o["instances"], 1, "{o}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journey_runs_over_kafka_with_the_apps_speaking_kafka_through_their_sidecars() {
    let _serial = SERIAL.lock().await;
    let tansu = kafka::Tansu::start();
    let bootstrap = tansu.bootstrap.clone();
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        demo(&[
            "--bus",
            "kafka",
            "--kafka-bootstrap",
            &bootstrap,
            "--stage",
            "all",
            "--orders",
            "10",
            "--exit",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{out}\n{err}");
    for stage in ["track", "act", "orchestrate", "change"] {
        assert!(out.contains(&format!("stage {stage} done")), "{out}");
    }
    // Every event crossed the broker, each with the trace context its sidecar gave it (the
    // apps set none).
    let events = kafka::client(&[
        "consume",
        &tansu.bootstrap,
        "flowing-retail",
        "--count",
        "100",
        "--group",
        "audit",
        "--timeout",
        "20",
    ])
    .await;
    let records = events["records"].as_array().unwrap();
    assert!(records.len() >= 100, "{events}");
    for r in records {
        let headers = r["headers"].as_array().unwrap();
        assert!(
            headers.iter().any(|h| h[0] == "traceparent"),
            "a record without trace context: {r}"
        );
    }
}
