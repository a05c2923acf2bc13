//! The HTTP API's contracts, against in-process nodes on 127.0.0.1 with real redb files: what
//! each endpoint answers, what it refuses and why, and that a refused request changes nothing.

// Tests run on tokio's test runtimes, which have a time driver of their own.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowmesh_control_plane::client::{Client, Error};
use flowmesh_control_plane::{ControlPlane, Handle, Options};
use flowmesh_proto::control::{Change, RegisterRequest, RolloutRequest};
use hyper::{Method, StatusCode};
use tokio::sync::oneshot;

const TOKEN: &str = "s3cret-token";

/// A node running in this process until dropped.
struct Node {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Node {
    async fn start(options: Options, dir: Option<tempfile::TempDir>) -> Node {
        let plane = ControlPlane::build(options).await.expect("node builds");
        let handle = plane.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(plane.run(async {
            let _ = stopped.await;
        }));
        Node {
            handle,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// A single-node cluster with a token, in its own temp dir.
    async fn single() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut options = Options::new(1, loopback(0), dir.path().join("data"));
        options.token = Some(TOKEN.to_owned());
        let node = Node::start(options, Some(dir)).await;
        node.client().await_leader().await;
        node
    }

    fn url(&self) -> String {
        format!("http://{}", self.handle.addr)
    }

    fn client(&self) -> Client {
        Client::new(&self.url(), Some(TOKEN.to_owned())).with_timeout(Duration::from_secs(10))
    }

    fn anonymous(&self) -> Client {
        Client::new(&self.url(), None).with_timeout(Duration::from_secs(10))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

trait AwaitLeader {
    async fn await_leader(&self) -> u64;
}

impl AwaitLeader for Client {
    async fn await_leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(view) = self.cluster().await
                && let Some(leader) = view.leader
            {
                return leader;
            }
            assert!(Instant::now() < deadline, "no leader within 15 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn order_model(task_type: &str) -> Bytes {
    Bytes::from(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <message id="m" name="PaymentReceived"><extensionElements><zeebe:subscription correlationKey="=orderId"/></extensionElements></message>
  <process id="order" isExecutable="true">
    <startEvent id="start"/>
    <serviceTask id="pay"><extensionElements><zeebe:taskDefinition type="{task_type}"/></extensionElements></serviceTask>
    <intermediateCatchEvent id="wait"><messageEventDefinition messageRef="m"/></intermediateCatchEvent>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="pay"/>
    <sequenceFlow id="f2" sourceRef="pay" targetRef="wait"/>
    <sequenceFlow id="f3" sourceRef="wait" targetRef="end"/>
  </process>
</definitions>"#
    ))
}

fn refusal(result: Result<impl std::fmt::Debug, Error>) -> (StatusCode, String, String) {
    match result {
        Err(Error::Refused {
            status,
            error,
            detail,
        }) => (status, error, detail),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn deployments_make_versions_and_refuse_invalid_models_without_storing_them() {
    let node = Node::single().await;
    let c = node.client();

    let first = c
        .deploy(order_model("charge"), Some("order"))
        .await
        .unwrap();
    assert_eq!(first.models.len(), 1);
    assert_eq!(
        (
            first.models[0].process.as_str(),
            first.models[0].version,
            first.models[0].owner.as_str()
        ),
        ("order", 1, "order")
    );
    // The same XML again is not a new version.
    let again = c
        .deploy(order_model("charge"), Some("order"))
        .await
        .unwrap();
    assert_eq!(again.models[0].version, 1);
    assert!(again.models[0].unchanged);
    let second = c
        .deploy(order_model("charge-v2"), Some("order"))
        .await
        .unwrap();
    assert_eq!(second.models[0].version, 2);

    let models = node.anonymous().models(false).await.unwrap();
    assert_eq!(models.models.len(), 2);
    let v1 = &models.models[0];
    assert_eq!(v1.sha256.len(), 64);
    assert!(v1.deployed_at.ends_with('Z'), "{}", v1.deployed_at);
    assert!(
        node.anonymous()
            .model_xml("order", "1")
            .await
            .unwrap()
            .contains(r#"type="charge""#)
    );
    assert!(
        node.anonymous()
            .model_xml("order", "latest")
            .await
            .unwrap()
            .contains(r#"type="charge-v2""#)
    );

    // Invalid models: the validator's message comes back and nothing is stored.
    let revision = models.revision;
    let (status, error, detail) = refusal(c.deploy(Bytes::from("<definitions"), None).await);
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_model")
    );
    assert!(!detail.is_empty());
    let broken = order_model("charge").to_vec();
    let broken = String::from_utf8(broken)
        .unwrap()
        .replace(r#"targetRef="end""#, r#"targetRef="nowhere""#);
    let (status, _, detail) = refusal(c.deploy(Bytes::from(broken), None).await);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail.contains("nowhere"), "{detail}");
    let (status, _, detail) = refusal(c.deploy(Bytes::new(), None).await);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail.contains("body is empty"), "{detail}");
    let (status, error, _) = refusal(c.deploy(order_model("x"), Some("no spaces")).await);
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_owner")
    );
    assert_eq!(c.models(true).await.unwrap().revision, revision);

    let (status, _, detail) = refusal(node.anonymous().model_xml("order", "9").await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(detail.contains("no version 9"), "{detail}");
    let (status, error, _) = refusal(node.anonymous().model_xml("order", "one").await);
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_version")
    );
}

#[tokio::test]
async fn writes_without_a_valid_token_get_401_and_change_nothing() {
    let node = Node::single().await;
    let wrong = Client::new(&node.url(), Some("guess".to_owned()));
    for client in [node.anonymous(), wrong] {
        let (status, error, _) = refusal(client.deploy(order_model("charge"), None).await);
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
        let weights = RolloutRequest {
            weights: [("1".to_owned(), 100)].into(),
        };
        assert_eq!(
            refusal(client.rollout("order", &weights).await).0,
            StatusCode::UNAUTHORIZED
        );
        let register = RegisterRequest {
            addresses: BTreeMap::new(),
            lease_seconds: 10,
            topics: Vec::new(),
        };
        assert_eq!(
            refusal(client.register("order", "o-1", &register).await).0,
            StatusCode::UNAUTHORIZED
        );
        let add = Bytes::from(r#"{"id": 9, "addr": "127.0.0.1:9"}"#);
        assert_eq!(
            refusal(
                client
                    .send_raw(Method::POST, "/v1/cluster/members", "application/json", add)
                    .await
            )
            .0,
            StatusCode::UNAUTHORIZED
        );
    }
    let c = node.anonymous();
    assert!(c.models(true).await.unwrap().models.is_empty());
    assert!(c.services(true).await.unwrap().services.is_empty());
    assert_eq!(c.cluster().await.unwrap().members.len(), 1);
}

#[tokio::test]
async fn rollout_weights_name_deployed_versions_and_sum_to_100() {
    let node = Node::single().await;
    let c = node.client();
    c.deploy(order_model("a"), None).await.unwrap();
    c.deploy(order_model("b"), None).await.unwrap();
    let weights = |w: &[(&str, u32)]| RolloutRequest {
        weights: w.iter().map(|(v, n)| ((*v).to_owned(), *n)).collect(),
    };
    c.rollout("order", &weights(&[("1", 90), ("2", 10)]))
        .await
        .unwrap();
    let models = c.models(false).await.unwrap();
    assert_eq!(
        models.rollouts["order"],
        BTreeMap::from([("1".to_owned(), 90), ("2".to_owned(), 10)])
    );
    for (bad, says) in [
        (weights(&[("1", 50), ("2", 10)]), "100"),
        (weights(&[("1", 90), ("3", 10)]), "3"),
        (weights(&[("one", 100)]), "not a version number"),
    ] {
        let (status, error, detail) = refusal(c.rollout("order", &bad).await);
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_rollout")
        );
        assert!(detail.contains(says), "{detail} should mention {says}");
    }
    let (status, _, _) = refusal(c.rollout("nobody", &weights(&[("1", 100)])).await);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        c.models(true).await.unwrap().rollouts,
        models.rollouts,
        "refused rollouts changed nothing"
    );
}

#[tokio::test]
async fn registrations_renew_and_expire_with_their_lease() {
    let node = Node::single().await;
    let c = node.client();
    let request = |lease_seconds| RegisterRequest {
        addresses: [("inbound".to_owned(), "127.0.0.1:15001".to_owned())].into(),
        lease_seconds,
        topics: vec!["flowing-retail".to_owned()],
    };
    let first = c
        .register("payment", "payment-1", &request(1))
        .await
        .unwrap();
    assert_eq!(first["new"], true);
    c.register("payment", "payment-2", &request(3600))
        .await
        .unwrap();
    let renewed = c
        .register("payment", "payment-2", &request(3600))
        .await
        .unwrap();
    assert_eq!(renewed["new"], false);
    let services = node.anonymous().services(true).await.unwrap();
    assert_eq!(services.services[0].name, "payment");
    assert_eq!(services.services[0].instances.len(), 2);
    assert_eq!(services.services[0].instances[0].topics, ["flowing-retail"]);
    assert_eq!(
        services.services[0].instances[0].addresses["inbound"],
        "127.0.0.1:15001"
    );
    // payment-1's one-second lease runs out; the leader drops it, payment-2 stays.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let services = c.services(true).await.unwrap();
        let ids: Vec<&str> = services.services[0]
            .instances
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        if ids == ["payment-2"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "payment-1 never expired: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (lease, path_id) in [(0, "payment-3"), (100_000, "payment-3"), (10, "bad id")] {
        let (status, _, _) = refusal(
            c.send_raw(
                Method::PUT,
                &format!(
                    "/v1/services/payment/instances/{}",
                    path_id.replace(' ', "%20")
                ),
                "application/json",
                Bytes::from(serde_json::to_vec(&request(lease)).unwrap()),
            )
            .await,
        );
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "lease {lease}, id {path_id}"
        );
    }
    let (status, error, _) = refusal(
        c.send_raw(
            Method::PUT,
            "/v1/services/payment/instances/payment-3",
            "application/json",
            Bytes::from("{}"),
        )
        .await,
    );
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_registration")
    );

    // Goodbye: the instance is gone at once; a second goodbye is not an error.
    assert_eq!(
        refusal(node.anonymous().deregister("payment", "payment-2").await).0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.deregister("payment", "payment-2").await.unwrap()["existed"],
        true
    );
    assert!(c.services(true).await.unwrap().services.is_empty());
    assert_eq!(
        c.deregister("payment", "payment-2").await.unwrap()["existed"],
        false
    );
}

#[tokio::test]
async fn watch_returns_as_soon_as_the_revision_passes_and_times_out_quietly() {
    let node = Node::single().await;
    let c = node.client();
    let start = c.models(false).await.unwrap().revision;

    // Nothing changes: the watch answers after its timeout with no changes.
    let quiet = c.watch(start, Duration::from_secs(1)).await.unwrap();
    assert_eq!(quiet.revision, start);
    assert!(quiet.changes.is_empty() && quiet.snapshot.is_none());

    // A change while the watch waits ends the wait with that change.
    let watcher = {
        let c = c.clone();
        tokio::spawn(async move { c.watch(start, Duration::from_secs(30)).await })
    };
    let began = Instant::now();
    c.deploy(order_model("charge"), Some("order"))
        .await
        .unwrap();
    let woke = watcher.await.unwrap().unwrap();
    assert!(began.elapsed() < Duration::from_secs(10));
    assert!(woke.revision > start);
    assert!(
        matches!(&woke.changes[..], [Change::ModelDeployed { model, .. }] if model.process == "order"),
        "{:?}",
        woke.changes
    );

    // Since 0 there is the whole history (still in the change ring).
    let all = c.watch(0, Duration::from_secs(1)).await.unwrap();
    assert_eq!(all.revision, woke.revision);
    assert!(!all.changes.is_empty() || all.snapshot.is_some());

    // A watcher ahead of the node (it saw another node's newer state) gets a full snapshot.
    let ahead = c
        .watch(woke.revision + 100, Duration::from_secs(1))
        .await
        .unwrap();
    let snapshot = ahead
        .snapshot
        .expect("a snapshot for a watcher that is ahead");
    assert_eq!(snapshot.models.len(), 1);

    let (status, error, _) = refusal(
        c.send_raw(Method::GET, "/v1/watch", "application/json", Bytes::new())
            .await,
    );
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_watch")
    );
}

#[tokio::test]
async fn routes_map_each_message_to_the_services_that_wait_for_it() {
    let node = Node::single().await;
    let c = node.client();
    c.deploy(order_model("charge"), Some("order"))
        .await
        .unwrap();
    let body = c
        .send_raw(Method::GET, "/v1/routes", "application/json", Bytes::new())
        .await
        .unwrap();
    let routes: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        routes["messages"]["PaymentReceived"],
        serde_json::json!(["order"])
    );
}

#[tokio::test]
async fn unknown_paths_and_bad_consistency_get_json_errors() {
    let node = Node::single().await;
    let c = node.anonymous();
    let (status, error, _) = refusal(
        c.send_raw(Method::GET, "/v1/nothing", "application/json", Bytes::new())
            .await,
    );
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, _, detail) = refusal(
        c.send_raw(
            Method::GET,
            "/v1/models?consistency=strong",
            "application/json",
            Bytes::new(),
        )
        .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail.contains("linearizable"), "{detail}");
}

/// Three in-process nodes: a write sent to a follower reaches the leader, and the follower's
/// linearizable read sees it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_sent_to_a_follower_reaches_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            std::net::TcpListener::bind(loopback(0))
                .and_then(|l| l.local_addr())
                .unwrap()
                .port()
        })
        .collect();
    let peers: BTreeMap<u64, String> = (1..=3u64)
        .map(|id| (id, loopback(ports[id as usize - 1]).to_string()))
        .collect();
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let mut options = Options::new(
            id,
            loopback(ports[id as usize - 1]),
            dir.path().join(format!("node-{id}")),
        );
        options.peers = peers.clone();
        options.token = Some(TOKEN.to_owned());
        nodes.push(Node::start(options, None).await);
    }
    let leader = nodes[0].client().await_leader().await;
    let follower = nodes
        .iter()
        .find(|n| n.handle.id != leader)
        .expect("a follower");
    let deployed = follower
        .client()
        .deploy(order_model("charge"), Some("order"))
        .await
        .unwrap();
    assert_eq!(deployed.models[0].version, 1);
    let seen = follower.anonymous().models(true).await.unwrap();
    assert_eq!(seen.models.len(), 1);
    assert!(seen.revision >= deployed.revision);
    let view = follower.anonymous().cluster().await.unwrap();
    assert_eq!(view.leader, Some(leader));
    assert_eq!(view.members.iter().filter(|m| m.voter).count(), 3);
}
