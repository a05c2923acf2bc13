//! The workflow runtime across real processes: a control plane and two `flowmesh proxy`
//! sidecars. order runs 200 orchestrated flows (a command event to payment's app, its reply
//! event back); order's sidecar is killed with SIGKILL in the middle and restarted. Every flow
//! completes, no command is published twice under different job keys, no reply is lost. Then
//! the CLI reads and steers the same sidecar.

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

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use cluster::Cluster;
use http::api;
use hyper::Method;
use serde_json::{Value, json};
use sidecar::Sidecar;

const FLOWS: usize = 200;
const UP: Duration = Duration::from_secs(60);

async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    f: impl FnMut() -> F,
) -> T {
    http::until(what, UP, f).await
}

async fn completed(local: SocketAddr) -> Option<usize> {
    let (status, list) = api(
        local,
        Method::GET,
        "/v1/instances?state=completed&limit=1000",
        None,
    )
    .await;
    (status == 200).then(|| list["items"].as_array().map_or(0, Vec::len))
}

fn flowmesh(local: SocketAddr, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .args(args)
        .args(["--sidecar", &format!("http://{local}")])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_survive_a_killed_sidecar_and_the_cli_steers_them() {
    let cp = Cluster::up(1, &[], UP).await;
    let cp_url = format!("http://{}", cp.addrs[&1]);
    let dir = tempfile::tempdir().unwrap();
    let order_app = worker::start().await;
    let payment_app = worker::start().await;
    let subscribed = "[[subscriptions]]\ntopic = \"retail\"\npath = \"/events\"\nbackoff = \"20ms\"\nattempts = 1000\n";
    let payment = Sidecar::spawn(
        &dir.path().join("payment"),
        "payment",
        payment_app.addr,
        &cp_url,
        subscribed,
    );
    payment_app.reply(
        "RetrievePaymentCommand",
        "PaymentReceivedEvent",
        payment.local,
        "retail",
    );
    let jobs = "[jobs]\n\"retrieve-payment\" = { publish = { topic = \"retail\", type = \"RetrievePaymentCommand\" } }\n";
    let mut order = Sidecar::spawn(
        &dir.path().join("order"),
        "order",
        order_app.addr,
        &cp_url,
        jobs,
    );

    cp.client(1)
        .deploy(
            Bytes::from_static(include_bytes!("../proxy/tests/fixtures/orchestrate.bpmn")),
            Some("order"),
        )
        .await
        .unwrap();
    until("order runs orchestrate", || async {
        let (_, models) = api(order.local, Method::GET, "/v1/models", None).await;
        (models["models"][0]["process"] == "orchestrate").then_some(())
    })
    .await;
    until("payment routes PaymentReceived to order", || async {
        let (_, d) = api(payment.local, Method::GET, "/v1/deployments", None).await;
        (d["routes"]["PaymentReceived"] == json!(["order"])).then_some(())
    })
    .await;

    // payment's app is down: no flow can finish before the kill. order is killed right after
    // the last flow started, while it is still publishing their commands.
    payment_app.set_events(worker::Mode::Fail);
    for i in 0..FLOWS {
        let body = json!({"process": "orchestrate", "business_key": format!("o-{i}"), "variables": {"orderId": format!("o-{i}")}});
        let (status, answer) = api(
            order.local,
            Method::POST,
            "/v1/instances",
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
    }
    order.kill9();
    assert!(payment_app.events().is_empty());
    order.restart();
    payment_app.set_events(worker::Mode::Complete);
    until("every flow completed after the restart", || async {
        completed(order.local).await.filter(|n| *n == FLOWS)
    })
    .await;

    // Each order's command was published under one job key, however often it was delivered.
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for taken in payment_app.events() {
        if taken.event["type"] == "RetrievePaymentCommand" {
            ids.entry(taken.event["data"]["orderId"].as_str().unwrap().to_owned())
                .or_default()
                .insert(taken.event["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), FLOWS);
    for (order_id, keys) in &ids {
        assert_eq!(
            keys.len(),
            1,
            "{order_id} was commanded under several job keys: {keys:?}"
        );
    }

    // The CLI on the same sidecar.
    let (ok, out, err) = flowmesh(
        order.local,
        &[
            "instances",
            "--state",
            "completed",
            "--limit",
            "1000",
            "-o",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), FLOWS);
    let key = listed["items"][0]["key"].as_str().unwrap().to_owned();
    let (ok, out, err) = flowmesh(
        order.local,
        &["instances", "--state", "completed", "--limit", "2"],
    );
    assert!(ok, "{err}");
    assert!(out.starts_with("KEY"), "{out}");
    assert!(
        out.contains("orchestrate") && out.contains("more after"),
        "{out}"
    );
    let (ok, out, err) = flowmesh(order.local, &["instance", &key]);
    assert!(ok, "{err}");
    assert!(
        out.contains("completed") && out.contains("payment-received"),
        "{out}"
    );
    let (ok, out, err) = flowmesh(
        order.local,
        &[
            "publish", "Nobody", "--key", "k-1", "--var", "amount=5", "--var", "note=hi", "--id",
            "cli-1",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("published Nobody (id cli-1)"), "{out}");
    let (ok, _, err) = flowmesh(
        order.local,
        &["publish", "Nobody", "--key", "k-1", "--id", "cli-1"],
    );
    assert!(!ok);
    assert!(err.contains("duplicate"), "{err}");
    let (ok, out, err) = flowmesh(order.local, &["signal", "Recall", "--var", "batch=7"]);
    assert!(ok, "{err}");
    assert!(out.contains("broadcast Recall (id "), "{out}");
    let (ok, _, err) = flowmesh(order.local, &["signal", "Recall", "--var", "batch"]);
    assert!(!ok);
    assert!(err.contains("not NAME=VALUE"), "{err}");
    let (ok, out, err) = flowmesh(order.local, &["incidents"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("ID"), "{out}");
    // What order's outbound proxy chooses from: payment's one instance, not passed over.
    let (ok, out, err) = flowmesh(order.local, &["registry"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("SERVICE"), "{out}");
    let payment_row = out
        .lines()
        .find(|l| l.starts_with("payment "))
        .unwrap_or_else(|| panic!("no payment row in\n{out}"));
    assert!(payment_row.trim_end().ends_with('-'), "{out}");
    let (ok, out, err) = flowmesh(order.local, &["registry", "-o", "json"]);
    assert!(ok, "{err}");
    let view: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        view["services"]["payment"].as_array().map(Vec::len),
        Some(1),
        "{out}"
    );
    let (ok, _, err) = flowmesh(order.local, &["resolve", "123"]);
    assert!(!ok);
    assert!(err.contains("no open incident 123"), "{err}");
    let (ok, _, err) = flowmesh(order.local, &["instance", "nope"]);
    assert!(!ok);
    assert!(err.contains("not a instance key"), "{err}");
}
