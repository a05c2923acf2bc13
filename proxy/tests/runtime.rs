//! The workflow runtime in a sidecar, against a control plane and a job-performing app on
//! 127.0.0.1: owned processes deploy themselves, jobs reach the app with their keys, failures
//! retry and become incidents that resolve, timers survive downtime, messages wait for their
//! subscriptions within their TTL, rollouts split by business key, and bad input to the local
//! API changes nothing.

// Tests run on tokio's test runtimes, which have a time driver of their own.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mesh.rs"]
mod harness;
#[path = "support/client.rs"]
mod http;
#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/worker.rs"]
mod worker;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowmesh_bpmn::testing::suite;
use flowmesh_control_plane::client::Client;
use flowmesh_proto::control::RolloutRequest;
use harness::{TOKEN, UP, control_plane, sidecar};
use http::{api, client, full, post};
use hyper::{Method, Request};
use serde_json::{Value, json};
use worker::{Mode, Taken};

const JOBS: &str = r#"
[jobs]
t1 = { http = "POST /jobs/t1", timeout = "5s", retries = 2, backoff = "20ms" }
t2 = { http = "POST /jobs/t2", timeout = "5s" }
t3 = { http = "POST /jobs/t3", timeout = "5s" }
"#;

async fn deploy(cp: &str, xml: &str, owner: &str) {
    Client::new(cp, Some(TOKEN.to_owned()))
        .deploy(Bytes::from(xml.to_owned()), Some(owner))
        .await
        .unwrap();
}

/// Polls `f` until it gives `Some`, or fails the test after [`UP`].
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    f: impl FnMut() -> F,
) -> T {
    http::until(what, UP, f).await
}

/// Waits until the sidecar's engine has `process` at `version`.
async fn deployed(local: SocketAddr, process: &str, version: u64) {
    until(&format!("{process} v{version} deployed"), || async {
        let (_, models) = api(local, Method::GET, "/v1/models", None).await;
        models["models"]
            .as_array()?
            .iter()
            .any(|m| m["process"] == process && m["version"] == version)
            .then_some(())
    })
    .await;
}

async fn start(local: SocketAddr, body: Value) -> String {
    let (status, created) = post(local, "/v1/instances", &body).await;
    assert_eq!(status, 201, "{created}");
    created["key"].as_str().unwrap().to_owned()
}

/// Waits until instance `key` is as `wanted` says, and returns it.
async fn instance_when(
    local: SocketAddr,
    key: &str,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    until(&format!("instance {key}: {what}"), || async {
        let (_, i) = api(local, Method::GET, &format!("/v1/instances/{key}"), None).await;
        wanted(&i).then_some(i)
    })
    .await
}

/// Waits until instance `key` is in `state`, and returns it.
async fn reaches(local: SocketAddr, key: &str, state: &str) -> Value {
    instance_when(local, key, state, |i| i["state"] == state).await
}

fn events(instance: &Value) -> Vec<(String, String)> {
    instance["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["element"].as_str().unwrap().to_owned(),
                h["event"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn payment(
    dir: &Path,
    cp: &str,
    app: SocketAddr,
    extra: &str,
) -> (
    flowmesh_proxy::Handle,
    harness::Stopper,
    tokio::task::JoinHandle<()>,
) {
    sidecar("payment", app, dir, cp, extra).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owned_process_runs_its_jobs_against_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let app = worker::start().await;
    let (side, _stop, _task) = payment(&dir.path().join("payment"), &cp, app.addr, JOBS).await;
    deploy(&cp, suite::THREE_TASKS, "payment").await;
    deployed(side.local, "three-tasks", 1).await;

    let key = start(
        side.local,
        json!({"process": "three-tasks", "variables": {"orderId": "o-1"}, "business_key": "o-1"}),
    )
    .await;
    let done = reaches(side.local, &key, "completed").await;
    assert_eq!(done["business_key"], "o-1");
    assert_eq!(done["version"], 1);
    assert_eq!(
        done["variables"],
        json!({"orderId": "o-1", "t1_done": true, "t2_done": true, "t3_done": true})
    );
    assert_eq!(done["active_elements"], json!([]));
    assert!(done["ended_at"].is_string());
    let history = events(&done);
    for task in ["t1", "t2", "t3"] {
        let at = |e: &str| history.iter().position(|h| h.0 == task && h.1 == e);
        assert!(
            at("activated").unwrap() < at("completed").unwrap(),
            "{history:?}"
        );
    }
    assert_eq!(
        history.last().unwrap(),
        &("three-tasks".to_owned(), "completed".to_owned())
    );
    let trace = done["trace_id"].as_str().unwrap();
    assert_eq!(trace.len(), 32);

    // Each job reached the app once, with its key as idempotency key and the instance's trace.
    let calls = app.calls();
    assert_eq!(
        calls.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(),
        ["/jobs/t1", "/jobs/t2", "/jobs/t3"]
    );
    for c in &calls {
        assert_eq!(c.job["key"].as_str().unwrap(), c.idempotency_key);
        assert_eq!(c.job["instance"].as_str().unwrap(), key);
        assert_eq!(c.job["process"], "three-tasks");
        assert!(c.traceparent.as_deref().unwrap().contains(trace), "{c:?}");
    }
    assert_eq!(calls[1].variables["t1_done"], true);

    let (_, list) = api(
        side.local,
        Method::GET,
        "/v1/instances?state=completed&process=three-tasks",
        None,
    )
    .await;
    assert_eq!(list["items"][0]["key"], key.as_str());
    assert_eq!(list["next"], Value::Null);
    let (_, none) = api(side.local, Method::GET, "/v1/instances?state=active", None).await;
    assert_eq!(none["items"], json!([]));
    let (_, models) = api(side.local, Method::GET, "/v1/models", None).await;
    let model = &models["models"][0];
    assert_eq!(model["instances"]["completed"], 1);
    assert_eq!(model["elements"]["t2"]["completed"], 1);
    assert_eq!(model["elements"]["t2"]["active"], 0);
    assert!(model["elements"]["t2"]["avg_ms"].is_number());

    let metrics = http_text(side.local, "/metrics").await;
    for line in [
        "flowmesh_instances{state=\"completed\"} 1",
        "flowmesh_instances{state=\"active\"} 0",
        "flowmesh_jobs_total{job_type=\"t2\",outcome=\"completed\"} 1",
        "flowmesh_incidents 0",
        "flowmesh_outbox_depth 0",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    assert!(metrics.contains("flowmesh_engine_commands_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_then_raise_incidents_that_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let app = worker::start().await;
    // t3 has no [jobs] entry.
    let jobs = JOBS
        .lines()
        .filter(|l| !l.starts_with("t3"))
        .collect::<Vec<_>>()
        .join("\n");
    let (side, _stop, _task) = payment(&dir.path().join("payment"), &cp, app.addr, &jobs).await;
    deploy(&cp, suite::THREE_TASKS, "payment").await;
    deployed(side.local, "three-tasks", 1).await;

    app.set(Mode::Fail);
    let key = start(side.local, json!({"process": "three-tasks"})).await;
    let stuck = reaches(side.local, &key, "incident").await;
    let incident = &stuck["incidents"][0];
    assert_eq!(incident["element"], "t1");
    assert_eq!(incident["kind"], "JOB_NO_RETRIES");
    assert!(
        incident["message"].as_str().unwrap().contains("503"),
        "{incident}"
    );
    assert_eq!(stuck["active_elements"], json!(["t1"]));
    // retries = 2 in [jobs]: two attempts, the same job key both times.
    let calls = app.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].idempotency_key, calls[1].idempotency_key);

    app.set(Mode::Complete);
    let id = incident["id"].as_str().unwrap();
    let (status, body) = api(
        side.local,
        Method::POST,
        &format!("/v1/incidents/{id}/resolve"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // t1 and t2 complete; t3 has no worker: an incident that says so.
    let stuck = until("the t3 incident", || async {
        let i = reaches(side.local, &key, "incident").await;
        (i["incidents"][0]["element"] == "t3").then_some(i)
    })
    .await;
    let message = stuck["incidents"][0]["message"].as_str().unwrap();
    assert!(message.contains("no worker for job type 't3'"), "{message}");
    let (_, all) = api(side.local, Method::GET, "/v1/incidents", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let metrics = http_text(side.local, "/metrics").await;
    assert!(metrics.contains("flowmesh_incidents 1"), "{metrics}");
    assert!(
        metrics.contains("flowmesh_instances{state=\"incident\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flowmesh_jobs_total{job_type=\"t3\",outcome=\"no_worker\"} 1"),
        "{metrics}"
    );

    // A business error nobody catches is an incident too.
    app.set(Mode::Error);
    let other = start(side.local, json!({"process": "three-tasks"})).await;
    let failed = reaches(side.local, &other, "incident").await;
    assert_eq!(failed["incidents"][0]["kind"], "UNHANDLED_ERROR_EVENT");
    assert!(
        failed["incidents"][0]["message"]
            .as_str()
            .unwrap()
            .contains("CARD_EXPIRED")
    );

    // Cancelling ends the instance and its incidents.
    let (status, _) = api(
        side.local,
        Method::DELETE,
        &format!("/v1/instances/{other}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let cancelled = reaches(side.local, &other, "cancelled").await;
    assert_eq!(cancelled["incidents"], json!([]));
    let (status, _) = api(
        side.local,
        Method::DELETE,
        &format!("/v1/instances/{other}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_fire_after_downtime_and_messages_wait_for_their_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let app = worker::start().await;
    let data = dir.path().join("payment");
    let (side, mut stop, task) = payment(&data, &cp, app.addr, JOBS).await;
    deploy(&cp, include_str!("fixtures/wait.bpmn"), "payment").await;
    deployed(side.local, "wait", 1).await;

    let started = Instant::now();
    let key = start(
        side.local,
        json!({"process": "wait", "variables": {"duration": "PT1S", "orderId": "o-7"}}),
    )
    .await;
    let (_, waiting) = api(
        side.local,
        Method::GET,
        &format!("/v1/instances/{key}"),
        None,
    )
    .await;
    assert_eq!(waiting["active_elements"], json!(["pause"]));
    // The message comes before the instance subscribes: buffered for its TTL.
    let message = json!({"name": "Paid", "correlation_key": "o-7", "variables": {"paid": 10}, "ttl": "PT1M", "id": "pay-o-7"});
    let (status, body) = post(side.local, "/v1/messages", &message).await;
    assert_eq!((status, body["id"].as_str()), (202, Some("pay-o-7")));
    let (status, body) = post(side.local, "/v1/messages", &message).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "duplicate");
    let (_, held) = api(side.local, Method::GET, "/v1/messages", None).await;
    assert_eq!(held["items"][0]["id"], "pay-o-7");
    assert_eq!(held["items"][0]["waited_for_by"], json!(["payment"]));

    // Down while the timer falls due.
    stop.stop();
    task.await.unwrap();
    while started.elapsed() < Duration::from_millis(1500) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (side, _stop, _task) = payment(&data, &cp, app.addr, JOBS).await;
    let done = reaches(side.local, &key, "completed").await;
    assert_eq!(done["variables"]["paid"], 10);
    let history = events(&done);
    assert!(history.contains(&("pause".to_owned(), "completed".to_owned())));

    // A message whose TTL ended before the subscription opened does not correlate.
    let late = json!({"name": "Paid", "correlation_key": "o-8", "ttl": "PT0S"});
    let (status, _) = post(side.local, "/v1/messages", &late).await;
    assert_eq!(status, 202);
    let key = start(
        side.local,
        json!({"process": "wait", "variables": {"duration": "PT0S", "orderId": "o-8"}}),
    )
    .await;
    let waiting = instance_when(side.local, &key, "waits for Paid", |i| {
        i["active_elements"] == json!(["paid"])
    })
    .await;
    assert_eq!(waiting["state"], "active");

    // The stuck instance is repaired by a modification: refused ones change nothing.
    let path = format!("/v1/instances/{key}/modification");
    let (status, body) = post(side.local, &path, &json!({"activate": ["start"]})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("start event"),
        "{body}"
    );
    let (status, body) = post(side.local, &path, &json!({"terminate": ["nope"]})).await;
    assert_eq!(status, 400, "{body}");
    let paid = waiting["active"][0]["key"].as_str().unwrap().to_owned();
    assert_eq!(waiting["active"][0]["element"], "paid");
    // Repeat the step: a new wait for the message in place of the old one.
    let (status, body) = post(
        side.local,
        &path,
        &json!({"activate": ["paid"], "terminate": [paid], "variables": {"paid": 0}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let again = instance_when(side.local, &key, "waits again", |i| {
        i["active"][0]["element"] == "paid" && i["active"][0]["key"] != paid.as_str()
    })
    .await;
    assert_eq!(again["variables"]["paid"], 0);
    let message = json!({"name": "Paid", "correlation_key": "o-8", "variables": {"paid": 8}});
    let (status, _) = post(side.local, "/v1/messages", &message).await;
    assert_eq!(status, 202);
    let done = reaches(side.local, &key, "completed").await;
    assert_eq!(done["variables"]["paid"], 8);
    assert!(events(&done).contains(&("paid".to_owned(), "terminated".to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_weights_split_new_instances_by_business_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let app = worker::start().await;
    let (side, _stop, _task) = payment(&dir.path().join("payment"), &cp, app.addr, JOBS).await;
    deploy(&cp, suite::THREE_TASKS, "payment").await;
    deploy(
        &cp,
        &suite::THREE_TASKS.replace("id=\"defs\"", "id=\"defs-2\""),
        "payment",
    )
    .await;
    deployed(side.local, "three-tasks", 2).await;
    Client::new(&cp, Some(TOKEN.to_owned()))
        .rollout(
            "three-tasks",
            &RolloutRequest {
                weights: BTreeMap::from([("1".to_owned(), 50), ("2".to_owned(), 50)]),
            },
        )
        .await
        .unwrap();
    until("the rollout reaches the sidecar", || async {
        side.deployments
            .current()
            .rollouts
            .contains_key("three-tasks")
            .then_some(())
    })
    .await;

    let mut version_of = BTreeMap::new();
    for i in 0..40 {
        let body = json!({"process": "three-tasks", "business_key": format!("k-{i}")});
        let (status, created) = post(side.local, "/v1/instances", &body).await;
        assert_eq!(status, 201);
        version_of.insert(i, created["version"].as_u64().unwrap());
    }
    let on_2 = version_of.values().filter(|v| **v == 2).count();
    assert!((10..=30).contains(&on_2), "{version_of:?}");
    for i in 0..10 {
        let body = json!({"process": "three-tasks", "business_key": format!("k-{i}")});
        let (_, created) = post(side.local, "/v1/instances", &body).await;
        assert_eq!(created["version"].as_u64(), Some(version_of[&i]), "k-{i}");
    }
    // An explicit version wins over the weights.
    let body = json!({"process": "three-tasks", "business_key": "k-0", "version": 1});
    let (_, created) = post(side.local, "/v1/instances", &body).await;
    assert_eq!(created["version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_the_local_api_gets_a_clear_4xx_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let app = worker::start().await;
    let extra = format!("{JOBS}\n[runtime]\nmax_request_bytes = 2048\n");
    let (side, _stop, _task) = payment(&dir.path().join("payment"), &cp, app.addr, &extra).await;
    deploy(&cp, suite::THREE_TASKS, "payment").await;
    deployed(side.local, "three-tasks", 1).await;

    let huge = json!({"process": "three-tasks", "variables": {"x": "y".repeat(4096)}}).to_string();
    // method, path, body, status, error code, part of the detail
    type Case<'a> = (Method, &'a str, Option<String>, u16, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            Method::POST,
            "/v1/instances",
            Some("{\"process\": ".into()),
            400,
            "invalid_json",
            "not valid JSON",
        ),
        (
            Method::POST,
            "/v1/instances",
            Some("{\"process\": \"nope\"}".into()),
            404,
            "not_found",
            "nope",
        ),
        (
            Method::POST,
            "/v1/instances",
            Some("{\"process\": 5}".into()),
            400,
            "invalid_request",
            "expected a string",
        ),
        (
            Method::POST,
            "/v1/instances",
            Some("{\"process\": \"three-tasks\", \"variables\": [1]}".into()),
            400,
            "invalid_request",
            "must be a JSON object",
        ),
        (
            Method::POST,
            "/v1/instances",
            Some("{\"process\": \"three-tasks\", \"version\": 9}".into()),
            404,
            "not_found",
            "9",
        ),
        (
            Method::POST,
            "/v1/instances",
            Some("{\"process\": \"three-tasks\", \"bussiness_key\": \"x\"}".into()),
            400,
            "invalid_request",
            "unknown field",
        ),
        (
            Method::POST,
            "/v1/instances",
            Some(huge),
            413,
            "too_large",
            "max_request_bytes",
        ),
        (
            Method::POST,
            "/v1/messages",
            Some("{\"name\": \"Paid\"}".into()),
            400,
            "invalid_request",
            "correlation_key",
        ),
        (
            Method::POST,
            "/v1/messages",
            Some("{\"name\": \"Paid\", \"correlation_key\": \"k\", \"ttl\": \"soon\"}".into()),
            400,
            "invalid_request",
            "not a duration",
        ),
        (
            Method::POST,
            "/v1/incidents/123/resolve",
            None,
            404,
            "not_found",
            "no open incident 123",
        ),
        (
            Method::POST,
            "/v1/incidents/abc/resolve",
            None,
            400,
            "invalid_request",
            "not a incident key",
        ),
        (
            Method::GET,
            "/v1/instances/77",
            None,
            404,
            "not_found",
            "77",
        ),
        (
            Method::DELETE,
            "/v1/instances/77",
            None,
            404,
            "not_found",
            "77",
        ),
        (
            Method::GET,
            "/v1/instances?state=stuck",
            None,
            400,
            "invalid_request",
            "active, completed",
        ),
        (
            Method::GET,
            "/v1/instances?limit=0",
            None,
            400,
            "invalid_request",
            "limit",
        ),
        (
            Method::GET,
            "/v1/nothing",
            None,
            404,
            "not_found",
            "not an endpoint",
        ),
    ];
    for (method, path, body, status, code, detail) in cases {
        let (got, answer) = api(side.local, method.clone(), path, body.as_deref()).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert_eq!(answer["error"], code, "{method} {path}: {answer}");
        let text = answer["detail"].as_str().unwrap();
        assert!(text.contains(detail), "{method} {path}: {text}");
    }
    let (_, list) = api(side.local, Method::GET, "/v1/instances", None).await;
    assert_eq!(list["items"], json!([]));
    assert!(app.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_the_owning_sidecar_through_the_mesh_and_wait_out_its_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let order_app = worker::start().await;
    let payment_app = worker::start().await;
    let order_dir = dir.path().join("order");
    let (order, mut order_stop, order_task) =
        sidecar("order", order_app.addr, &order_dir, &cp, "").await;
    let (pay, _pay_stop, _pay_task) =
        payment(&dir.path().join("payment"), &cp, payment_app.addr, "").await;
    deploy(&cp, include_str!("fixtures/order-wait.bpmn"), "order").await;
    deployed(order.local, "order-wait", 1).await;
    harness::routable(&pay, "order", true).await;
    until("payment knows who waits for PaymentReceived", || async {
        (!pay
            .deployments
            .current()
            .owners_of("PaymentReceived")
            .is_empty())
        .then_some(())
    })
    .await;
    let key = start(
        order.local,
        json!({"process": "order-wait", "variables": {"orderId": "o-1"}}),
    )
    .await;

    // A call into payment's app, seen by payment's sidecar, is PaymentReceived for order.
    let request = Request::post(format!("http://{}/payments/o-1", pay.inbound))
        .header("content-type", "application/json")
        .body(full(Bytes::from_static(b"{\"amount\": 5}")))
        .unwrap();
    client().request(request).await.unwrap();
    let paid = instance_when(order.local, &key, "paid", |i| {
        i["active_elements"] == json!(["shipped"])
    })
    .await;
    assert_eq!(paid["variables"]["amount"], 5);

    // order is down: the message waits in payment's outbox and arrives after the restart.
    order_stop.stop();
    order_task.await.unwrap();
    let shipped = json!({"name": "GoodsShipped", "correlation_key": "o-1", "id": "ship-o-1"});
    let (status, _) = post(pay.local, "/v1/messages", &shipped).await;
    assert_eq!(status, 202);
    let (order, _order_stop, _order_task) =
        sidecar("order", order_app.addr, &order_dir, &cp, "").await;
    reaches(order.local, &key, "completed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestrated_flow_commands_another_service_and_takes_its_reply_event() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let order_app = worker::start().await;
    let payment_app = worker::start().await;
    let order_jobs = r#"
[jobs]
"retrieve-payment" = { publish = { topic = "retail", type = "RetrievePaymentCommand" } }
"#;
    let (order, _o_stop, _o_task) = sidecar(
        "order",
        order_app.addr,
        &dir.path().join("order"),
        &cp,
        order_jobs,
    )
    .await;
    let (pay, _p_stop, _p_task) = payment(
        &dir.path().join("payment"),
        &cp,
        payment_app.addr,
        worker::SUBSCRIBED,
    )
    .await;
    payment_app.reply(
        "RetrievePaymentCommand",
        "PaymentReceivedEvent",
        pay.local,
        "retail",
    );
    deploy(&cp, include_str!("fixtures/orchestrate.bpmn"), "order").await;
    deployed(order.local, "orchestrate", 1).await;
    until("order knows payment subscribes to retail", || async {
        (order.registry.subscribers("retail") == ["payment"]).then_some(())
    })
    .await;
    until("payment knows who waits for PaymentReceived", || async {
        (pay.deployments.current().owners_of("PaymentReceived") == ["order"]).then_some(())
    })
    .await;

    let mut keys = Vec::new();
    for i in 0..5 {
        let body = json!({"process": "orchestrate", "business_key": format!("o-{i}"), "variables": {"orderId": format!("o-{i}"), "amount": i}});
        keys.push(start(order.local, body).await);
    }
    for key in &keys {
        let done = reaches(order.local, key, "completed").await;
        let history = events(&done);
        assert!(history.contains(&("payment-received".to_owned(), "completed".to_owned())));
    }
    // Each command reached payment's app once (no publish twice), with its instance's trace.
    let commands: Vec<Taken> = payment_app
        .events()
        .into_iter()
        .filter(|t| t.event["type"] == "RetrievePaymentCommand")
        .collect();
    assert_eq!(commands.len(), 5);
    for (i, key) in keys.iter().enumerate() {
        let (_, instance) = api(
            order.local,
            Method::GET,
            &format!("/v1/instances/{key}"),
            None,
        )
        .await;
        let trace = instance["trace_id"].as_str().unwrap();
        let command = commands
            .iter()
            .find(|c| c.event["data"]["orderId"] == format!("o-{i}"))
            .unwrap();
        assert_eq!(command.event["data"]["amount"], i);
        assert!(
            command.traceparent.as_deref().unwrap().contains(trace),
            "{command:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_was_down_gets_every_event_in_order_and_one_that_never_answers_dead_letters()
 {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let app = worker::start().await;
    let dead_app = worker::start().await;
    let (side, _stop, _task) = payment(
        &dir.path().join("payment"),
        &cp,
        app.addr,
        worker::SUBSCRIBED,
    )
    .await;
    let never = "\n[[subscriptions]]\ntopic = \"retail\"\npath = \"/nowhere\"\nattempts = 3\nbackoff = \"10ms\"\n";
    let (dead, _d_stop, _d_task) = sidecar(
        "archive",
        dead_app.addr,
        &dir.path().join("archive"),
        &cp,
        never,
    )
    .await;
    until("both subscribers are known", || async {
        (side.registry.subscribers("retail").len() == 2).then_some(())
    })
    .await;

    app.set_events(Mode::Fail);
    for i in 0..20 {
        let event = json!({
            "specversion": "1.0", "id": format!("e-{i}"), "source": "/test", "type": "Tick",
            "partitionkey": format!("p{}", i % 2), "data": {"n": i},
        });
        let (status, body) = post(side.local, "/v1/events/retail", &event).await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, body) = api(
        side.local,
        Method::POST,
        "/v1/events/retail",
        Some("{\"id\": 1}"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // The app is down: the events wait in the inbox (retried), then arrive once it is back.
    until("the inbox holds the events", || async {
        let depth = side
            .runtime
            .as_ref()?
            .snapshots()
            .read_with(|_, txn| flowmesh_proxy::runtime::inbox::depth(txn))
            .ok()?;
        (depth == 20).then_some(())
    })
    .await;
    app.set_events(Mode::Complete);
    let taken = until("all 20 events arrived", || async {
        let taken = app.events();
        let mut seen: Vec<i64> = taken
            .iter()
            .map(|t| t.event["data"]["n"].as_i64().unwrap())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        (seen.len() == 20).then_some(taken)
    })
    .await;
    for p in ["p0", "p1"] {
        let order: Vec<i64> = taken
            .iter()
            .filter(|t| t.event["partitionkey"] == p)
            .map(|t| t.event["data"]["n"].as_i64().unwrap())
            .collect();
        let mut first_seen = order.clone();
        first_seen.dedup();
        let mut sorted = first_seen.clone();
        sorted.sort_unstable();
        assert_eq!(first_seen, sorted, "partition {p} out of order: {order:?}");
    }

    // archive's app has no /nowhere: every event becomes a dead letter there.
    let letters = until("20 dead letters", || async {
        let (_, d) = api(dead.local, Method::GET, "/v1/dead-letters", None).await;
        (d["items"].as_array()?.len() == 20).then_some(d)
    })
    .await;
    assert_eq!(letters["items"][0]["attempts"], 3);
    assert!(
        letters["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("404")
    );
    let metrics = http_text(dead.local, "/metrics").await;
    assert!(
        metrics.contains("flowmesh_dead_letters_total{topic=\"retail\"} 20"),
        "{metrics}"
    );
}

async fn http_text(local: SocketAddr, path: &str) -> String {
    let response = client()
        .get(format!("http://{local}{path}").parse().unwrap())
        .await
        .unwrap();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_delivered_again_is_acknowledged_but_not_taken_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let app = worker::start().await;
    let (side, _stop, _task) = payment(
        &dir.path().join("payment"),
        &cp,
        app.addr,
        worker::SUBSCRIBED,
    )
    .await;
    deploy(&cp, include_str!("fixtures/wait.bpmn"), "payment").await;
    deployed(side.local, "wait", 1).await;
    let waiting = |key: String| {
        let local = side.local;
        async move {
            instance_when(local, &key, "waits for Paid", |i| {
                i["active_elements"] == json!(["paid"])
            })
            .await
        }
    };
    let body = json!({"process": "wait", "variables": {"duration": "PT0S", "orderId": "o-9"}});
    let first = start(side.local, body.clone()).await;
    waiting(first.clone()).await;

    // A peer's batch: a message with no time to live (it correlates now or never) and an event.
    let batch = json!({
        "from": "order",
        "messages": [{"id": "paid-o-9", "name": "Paid", "correlation_key": "o-9", "ttl_ms": 0}],
        "events": [{"topic": "retail", "event": {"specversion": "1.0", "id": "e-9", "source": "/order", "type": "Tick"}}],
    });
    let deliver = || async {
        let request = Request::post(format!("http://{}/mesh/v1/deliver", side.mesh))
            .header("content-type", "application/json")
            .header("x-flowmesh-service", "payment")
            .body(full(Bytes::from(batch.to_string())))
            .unwrap();
        client().request(request).await.unwrap().status()
    };
    assert_eq!(deliver().await, 200);
    reaches(side.local, &first, "completed").await;
    until("the event reached the app", || async {
        (app.events().len() == 1).then_some(())
    })
    .await;

    // The same batch again (its acknowledgement was lost): acknowledged, not taken again. A new
    // instance waiting for the same message is not reached by the repeat.
    let second = start(side.local, body).await;
    waiting(second.clone()).await;
    assert_eq!(deliver().await, 200);
    let (_, i) = api(
        side.local,
        Method::GET,
        &format!("/v1/instances/{second}"),
        None,
    )
    .await;
    assert_eq!(i["state"], "active");
    assert_eq!(i["active_elements"], json!(["paid"]));
    let depth = side
        .runtime
        .as_ref()
        .unwrap()
        .snapshots()
        .read_with(|_, txn| flowmesh_proxy::runtime::inbox::depth(txn))
        .unwrap();
    assert_eq!(depth, 0, "the repeated event entered the inbox");
    assert_eq!(app.events().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_instance_migrates_to_a_new_version_through_the_local_api() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let app = worker::start().await;
    let (side, _stop, _task) = payment(&dir.path().join("payment"), &cp, app.addr, JOBS).await;
    let v1 = include_str!("fixtures/wait.bpmn");
    deploy(&cp, v1, "payment").await;
    deployed(side.local, "wait", 1).await;
    let key = start(
        side.local,
        json!({"process": "wait", "variables": {"duration": "PT1H", "orderId": "o-9"}}),
    )
    .await;
    instance_when(side.local, &key, "waits an hour", |i| {
        i["active_elements"] == json!(["pause"])
    })
    .await;
    // Version 2 waits less at a renamed timer; the migrated timer keeps its due time.
    let v2 = v1
        .replace("pause", "pause-short")
        .replace("= duration", "PT0S");
    deploy(&cp, &v2, "payment").await;
    deployed(side.local, "wait", 2).await;

    let path = format!("/v1/instances/{key}/migration");
    let (status, body) = post(side.local, &path, &json!({"version": 2})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("'pause' has no mapping"),
        "{body}"
    );
    let (status, body) = post(
        side.local,
        &path,
        &json!({"version": 2, "mappings": {"pause": "pause-short"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let moved = instance_when(side.local, &key, "waits at the new timer", |i| {
        i["version"] == 2 && i["active_elements"] == json!(["pause-short"])
    })
    .await;
    assert_eq!(moved["state"], "active", "{moved}");
    let (_, models) = api(side.local, Method::GET, "/v1/models", None).await;
    let active = |v: u64| {
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["version"] == v)
            .map(|m| m["instances"]["active"].clone())
    };
    assert_eq!(active(1), Some(json!(0)));
    assert_eq!(active(2), Some(json!(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_reaches_every_waiting_process_in_the_mesh() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let order_app = worker::start().await;
    let payment_app = worker::start().await;
    let (order, _order_stop, _order_task) =
        sidecar("order", order_app.addr, &dir.path().join("order"), &cp, "").await;
    let (pay, _pay_stop, _pay_task) =
        payment(&dir.path().join("payment"), &cp, payment_app.addr, "").await;
    deploy(&cp, include_str!("fixtures/recall-order.bpmn"), "order").await;
    deploy(&cp, include_str!("fixtures/recall-payment.bpmn"), "payment").await;
    deployed(order.local, "order-recall", 1).await;
    deployed(pay.local, "payment-recall", 1).await;
    for (h, other) in [(&order, "payment"), (&pay, "order")] {
        harness::routable(h, other, true).await;
        until(&format!("{other} is known to own processes"), || async {
            h.deployments
                .current()
                .owners()
                .contains(&other)
                .then_some(())
        })
        .await;
    }
    let waiting = |local, process: &'static str| async move {
        let key = start(local, json!({"process": process})).await;
        instance_when(local, &key, "waiting for recall", |i| {
            i["active_elements"] == json!(["recalled"])
        })
        .await;
        key
    };

    // Thrown by a process of payment: payment's own instance and order's both get it.
    let at_order = waiting(order.local, "order-recall").await;
    let at_pay = waiting(pay.local, "payment-recall").await;
    let thrower = start(
        pay.local,
        json!({"process": "recall-thrower", "variables": {"batch": "b-7"}}),
    )
    .await;
    reaches(pay.local, &thrower, "completed").await;
    let done = reaches(order.local, &at_order, "completed").await;
    assert_eq!(done["variables"]["batch"], "b-7", "{done}");
    reaches(pay.local, &at_pay, "completed").await;

    // Sent by a client to one sidecar's local API: the same.
    let at_order = waiting(order.local, "order-recall").await;
    let at_pay = waiting(pay.local, "payment-recall").await;
    let (status, sent) = post(
        order.local,
        "/v1/signals",
        &json!({"name": "recall", "variables": {"batch": "b-8"}}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    reaches(order.local, &at_order, "completed").await;
    let done = reaches(pay.local, &at_pay, "completed").await;
    assert_eq!(done["variables"]["batch"], "b-8", "{done}");

    // Bad requests say what is wrong and change nothing.
    for (body, says) in [
        (json!({"name": ""}), "name must name the signal"),
        (
            json!({"name": "recall", "variables": [1]}),
            "variables must be a JSON object",
        ),
        (json!({"nam": "recall"}), "unknown field"),
    ] {
        let (status, answer) = post(order.local, "/v1/signals", &body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(says),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_called_process_runs_as_a_child_instance_in_its_callers_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let app = worker::start().await;
    let (pay, _stop, _task) = payment(dir.path(), &cp, app.addr, "").await;
    deploy(&cp, include_str!("fixtures/call.bpmn"), "payment").await;
    deployed(pay.local, "calling-parent", 1).await;
    let key = start(
        pay.local,
        json!({"process": "calling-parent", "variables": {"orderId": "o-9"}}),
    )
    .await;
    let parent = reaches(pay.local, &key, "completed").await;
    assert_eq!(parent["variables"]["stamp"], "stamped o-9", "{parent}");
    let (_, children) = api(
        pay.local,
        Method::GET,
        "/v1/instances?process=called-child",
        None,
    )
    .await;
    let items = children["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{children}");
    let child = reaches(pay.local, items[0]["key"].as_str().unwrap(), "completed").await;
    assert_eq!(child["trace_id"], parent["trace_id"], "one trace: {child}");
}
