//! Two sidecars and a control plane on 127.0.0.1: the app of `checkout` calls `inventory`
//! through its outbound port; the request crosses to inventory's sidecar over HTTP/2 and
//! reaches inventory's app, from HTTP/1.1 and HTTP/2 apps alike. Registration, deregistration,
//! the routing refusals, requests balanced away from a busy instance and from one that fails
//! fast, passed on from one that refuses the connection, and routing from the cached registry
//! while the control plane is down;
//! a sidecar bound to every interface registers addresses that another host can dial.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/app.rs"]
mod app;
#[path = "support/mesh.rs"]
mod harness;
#[path = "support/client.rs"]
mod http;

use harness::{control_plane, listed, routable, sidecar, sidecar_listening};
use http::{api, client, empty, json, read_head, until};

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request from checkout's app to `service` through the outbound port, naming it in `Host`.
fn via(outbound: SocketAddr, service: &str, path: &str) -> hyper::http::request::Builder {
    Request::builder()
        .uri(format!("http://{outbound}{path}"))
        .header("host", service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_reaches_another_service_through_both_sidecars() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let inventory_app = app::start().await;
    let checkout_app = app::start().await;
    let (inventory, mut inventory_stop, inventory_task) = sidecar(
        "inventory",
        inventory_app.addr,
        &dir.path().join("inventory"),
        &cp,
        "",
    )
    .await;
    let (checkout, _checkout_stop, _checkout_task) = sidecar(
        "checkout",
        checkout_app.addr,
        &dir.path().join("checkout"),
        &cp,
        "",
    )
    .await;
    routable(&checkout, "inventory", true).await;

    // Host names the service; headers arrive, the mesh's own fields do not.
    let request = via(checkout.outbound, "inventory", "/items/7?full=1")
        .header("x-order-id", "4711")
        .header("x-flowmesh-service", "forged")
        .body(empty())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echo = json(response).await;
    assert_eq!(echo["path"], "/items/7");
    assert_eq!(echo["query"], "full=1");
    assert_eq!(echo["headers"]["x-order-id"], "4711");
    assert_eq!(echo["headers"]["host"], "inventory");
    assert!(
        echo["headers"].get("x-flowmesh-service").is_none(),
        "{echo}"
    );
    assert!(echo["headers"].get("x-flowmesh-from").is_none(), "{echo}");

    // Absolute-form, as an app with HTTP_PROXY sends it.
    let mut stream = tokio::net::TcpStream::connect(checkout.outbound)
        .await
        .unwrap();
    stream
        .write_all(b"GET http://inventory/status/409 HTTP/1.1\r\nhost: inventory\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 409"), "{text}");

    // An app that speaks HTTP/2 (prior knowledge) names the service in :authority.
    let stream = tokio::net::TcpStream::connect(checkout.outbound)
        .await
        .unwrap();
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = h2
        .send_request(
            Request::post("http://inventory/items/9?via=h2")
                .header("x-order-id", "4712")
                .body(Full::new(Bytes::from_static(b"h2 body")).boxed())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let echo = json(response).await;
    assert_eq!(echo["path"], "/items/9");
    assert_eq!(echo["query"], "via=h2");
    assert_eq!(echo["headers"]["x-order-id"], "4712");
    assert_eq!(echo["body_bytes"], 7);

    // 10 MiB up and down across both hops.
    const N: u64 = 10 * 1024 * 1024;
    let chunks = (0..N).step_by(256 * 1024).map(|start| {
        let end = (start + 256 * 1024).min(N);
        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(
            (start..end).map(app::pattern).collect::<Vec<u8>>(),
        )))
    });
    let request = via(checkout.outbound, "inventory", "/upload")
        .method(Method::POST)
        .body(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        .unwrap();
    let echo = json(client().request(request).await.unwrap()).await;
    assert_eq!(echo["body_bytes"], N);
    assert_eq!(echo["body_is_pattern"], true);
    let request = via(
        checkout.outbound,
        "inventory",
        &format!("/download?bytes={N}"),
    )
    .body(empty())
    .unwrap();
    let body = client()
        .request(request)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body.len() as u64, N);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, b)| *b == app::pattern(i as u64))
    );

    // An upgrade across both hops (HTTP/1.1 between the sidecars for it).
    let mut stream = tokio::net::TcpStream::connect(checkout.outbound)
        .await
        .unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nhost: inventory\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream.write_all(b"ping across the mesh").await.unwrap();
    let mut back = [0u8; 20];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping across the mesh");

    // Refusals: a service nobody registered; a caller on the mesh port.
    let response = client()
        .request(
            via(checkout.outbound, "shipping", "/x")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let refusal = json(response).await;
    assert_eq!(refusal["error"], "no_instance");
    assert!(refusal["detail"].as_str().unwrap().contains("'shipping'"));
    let response = client()
        .request(
            Request::builder()
                .uri(format!("http://{}/x", inventory.mesh))
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);

    // Inventory's sidecar stops: it leaves the registry, and checkout stops routing to it.
    inventory_stop.stop();
    inventory_task.await.unwrap();
    routable(&checkout, "inventory", false).await;
    let response = client()
        .request(
            via(checkout.outbound, "inventory", "/x")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// Checkout's sidecar and one inventory instance per app, all following one control plane;
/// returns once checkout can route to inventory.
struct Balanced {
    _dir: tempfile::TempDir,
    cp: String,
    checkout: flowmesh_proxy::Handle,
    _running: Vec<(harness::Stopper, tokio::task::JoinHandle<()>)>,
}

async fn balanced(apps: &[&app::App], checkout_extra: &str) -> Balanced {
    let dir = tempfile::tempdir().unwrap();
    let (cp, cp_stop, cp_task) = control_plane(dir.path()).await;
    let mut running = vec![(cp_stop, cp_task)];
    for (k, app) in apps.iter().enumerate() {
        let home = dir.path().join(format!("inventory-{k}"));
        let (_, stop, task) = sidecar("inventory", app.addr, &home, &cp, "").await;
        running.push((stop, task));
    }
    let checkout_app = app::start().await;
    let home = dir.path().join("checkout");
    let (checkout, stop, task) =
        sidecar("checkout", checkout_app.addr, &home, &cp, checkout_extra).await;
    running.push((stop, task));
    listed(&checkout, "inventory", apps.len()).await;
    Balanced {
        _dir: dir,
        cp,
        checkout,
        _running: running,
    }
}

/// Keeps one instance busy with a request its app (one of `apps`) never answers; returns
/// once the request has arrived.
async fn hold(outbound: SocketAddr, apps: &[&app::App]) -> tokio::task::JoinHandle<()> {
    let hits = || apps.iter().map(|a| a.hits.load(Relaxed)).sum::<u64>();
    let before = hits();
    let held = tokio::spawn(async move {
        let _ = client()
            .request(via(outbound, "inventory", "/never").body(empty()).unwrap())
            .await;
    });
    until("the held request arrives", harness::UP, || async {
        (hits() > before).then_some(())
    })
    .await;
    held
}

/// GETs `path` from inventory through checkout's outbound port `n` times: the statuses.
async fn statuses(outbound: SocketAddr, path: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let response = client()
            .request(via(outbound, "inventory", path).body(empty()).unwrap())
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

/// Checkout's metrics, as text.
async fn metrics(checkout: &flowmesh_proxy::Handle) -> String {
    let (status, text) = api(checkout.local, Method::GET, "/metrics", None).await;
    assert_eq!(status, 200);
    text.as_str().unwrap().to_owned()
}

/// Checkout's metrics say that an instance of inventory was passed over once, for `reason`,
/// and that one request was passed on.
async fn passed_over_once_and_on(checkout: &flowmesh_proxy::Handle, reason: &str) {
    let text = metrics(checkout).await;
    for line in [
        format!(
            "flowmesh_instances_passed_over_total{{service=\"inventory\",reason=\"{reason}\"}} 1"
        ),
        "flowmesh_requests_passed_on_total{service=\"inventory\"} 1".to_owned(),
    ] {
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
}

/// A socket bound to a port of 127.0.0.1 and never listening: connections to it are refused,
/// and no other test can take its port meanwhile.
fn refusing() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// One inventory instance, busy with a request its app never answers, and an address that
/// refuses connections, for a second one; `checkout_extra` ends checkout's config.
async fn busy_and_refusing(
    checkout_extra: &str,
) -> (
    app::App,
    Balanced,
    tokio::task::JoinHandle<()>,
    (tokio::net::TcpSocket, SocketAddr),
) {
    let live = app::start().await;
    let mesh = balanced(&[&live], checkout_extra).await;
    let held = hold(mesh.checkout.outbound, &[&live]).await;
    (live, mesh, held, refusing())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_to_the_instance_that_is_not_busy() {
    let apps = [app::start().await, app::start().await];
    let [a, b] = &apps;
    let mesh = balanced(&[a, b], "").await;
    let held = hold(mesh.checkout.outbound, &[a, b]).await;
    let busy = usize::from(b.hits.load(Relaxed) == 1);

    // Round robin would send half of these to the busy one; all go to the other.
    assert_eq!(
        statuses(mesh.checkout.outbound, "/items/1", 20).await,
        [200; 20]
    );
    let hits: Vec<u64> = apps.iter().map(|a| a.hits.load(Relaxed)).collect();
    assert_eq!((hits[busy], hits[1 - busy]), (1, 20));
    // The local API shows what the choices were made from: one request in flight at one
    // instance, none at the other, which has answered 20 times (its estimate well under the
    // 30 ms it started from).
    let (status, view) = api(mesh.checkout.local, Method::GET, "/v1/registry", None).await;
    assert_eq!(status, 200, "{view}");
    let listed = view["services"]["inventory"].as_array().unwrap();
    let mut in_flight: Vec<u64> = listed
        .iter()
        .map(|i| i["in_flight"].as_u64().unwrap())
        .collect();
    in_flight.sort();
    assert_eq!(in_flight, [0, 1], "{view}");
    let idle = listed.iter().find(|i| i["in_flight"] == 0).unwrap();
    assert!(idle["answer_ms"].as_f64().unwrap() < 30.0, "{view}");
    assert_eq!(idle["passed_over_ms"], 0, "{view}");
    assert!(view["revision"].as_u64().unwrap() > 0, "{view}");
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_an_instance_refused_goes_to_another_body_and_all() {
    // The live instance is busy, so the next request goes to a second instance, one whose
    // port refuses connections.
    let (live, mesh, held, (_gone, gone)) = busy_and_refusing("").await;
    let registration = flowmesh_proto::control::RegisterRequest {
        addresses: [("mesh".to_owned(), gone.to_string())].into(),
        lease_seconds: 60,
        topics: Vec::new(),
    };
    flowmesh_control_plane::client::Client::new(&mesh.cp, Some(harness::TOKEN.to_owned()))
        .register("inventory", "inventory-gone", &registration)
        .await
        .unwrap();
    listed(&mesh.checkout, "inventory", 2).await;

    // It refuses; the request, body and all, goes on to the live one.
    let response = client()
        .request(
            via(mesh.checkout.outbound, "inventory", "/items/2")
                .method(Method::POST)
                .body(Full::new(Bytes::from_static(b"sku=42")).boxed())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echo = json(response).await;
    assert_eq!(
        (echo["path"].as_str(), echo["body_bytes"].as_u64()),
        (Some("/items/2"), Some(6))
    );
    assert_eq!(live.hits.load(Relaxed), 2);
    // The refusing instance is passed over from then on.
    assert_eq!(
        statuses(mesh.checkout.outbound, "/status/204", 5).await,
        [204; 5]
    );
    assert_eq!(live.hits.load(Relaxed), 7);
    passed_over_once_and_on(&mesh.checkout, "refused").await;
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_fails_fast_does_not_draw_the_traffic() {
    // With the live instance busy, a second instance whose app answers 502 at once, which
    // would make it look like the fastest instance of all. Checkout passes an instance over
    // after three failures (the default is five).
    let (live, mesh, held, _) =
        busy_and_refusing("[balance]\npass_over_after_failures = 3\n").await;
    let failing = app::start_failing(StatusCode::BAD_GATEWAY).await;
    let dir = tempfile::tempdir().unwrap();
    let (_broken, _broken_stop, _broken_task) =
        sidecar("inventory", failing.addr, dir.path(), &mesh.cp, "").await;
    listed(&mesh.checkout, "inventory", 2).await;

    // Three gateway failures in a row pass it over; the rest reach the live instance.
    let mut wanted = vec![502; 3];
    wanted.resize(30, 200);
    assert_eq!(
        statuses(mesh.checkout.outbound, "/status/200", 30).await,
        wanted
    );
    assert_eq!(
        (live.hits.load(Relaxed), failing.hits.load(Relaxed)),
        (1 + 27, 3)
    );
    let (_, view) = api(mesh.checkout.local, Method::GET, "/v1/registry", None).await;
    let passed_over: Vec<u64> = view["services"]["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["passed_over_ms"].as_u64().unwrap())
        .collect();
    // The broken one is passed over for up to 5 s from now; the live one is not.
    assert!(
        passed_over
            .iter()
            .filter(|&&ms| ms > 0 && ms <= 5000)
            .count()
            == 1
            && passed_over.contains(&0),
        "{view}"
    );
    let text = metrics(&mesh.checkout).await;
    let line = "flowmesh_instances_passed_over_total{service=\"inventory\",reason=\"failures\"} 1";
    assert!(text.contains(line), "{line} not in\n{text}");
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_instance_has_no_app_goes_to_another() {
    // With the live instance busy, a second instance whose sidecar is up and whose app is
    // not listening: its sidecar's 502 says the app saw nothing, so checkout passes the
    // request on, as for a refused connection.
    let (live, mesh, held, (_gone, gone)) = busy_and_refusing("").await;
    let dir = tempfile::tempdir().unwrap();
    let (_broken, _broken_stop, _broken_task) =
        sidecar("inventory", gone, dir.path(), &mesh.cp, "").await;
    listed(&mesh.checkout, "inventory", 2).await;

    assert_eq!(
        statuses(mesh.checkout.outbound, "/status/200", 10).await,
        [200; 10]
    );
    assert_eq!(live.hits.load(Relaxed), 1 + 10);
    passed_over_once_and_on(&mesh.checkout, "app_unreachable").await;
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_cannot_make_its_sidecar_say_it_was_unreachable() {
    // An app that sets the mark itself on a failure it did process: the mark is dropped on
    // the way, so the caller's sidecar does not send the request again.
    let (live, mesh, held, _) = busy_and_refusing("").await;
    let forging = app::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_other, _other_stop, _other_task) =
        sidecar("inventory", forging.addr, dir.path(), &mesh.cp, "").await;
    listed(&mesh.checkout, "inventory", 2).await;
    let response = client()
        .request(
            via(
                mesh.checkout.outbound,
                "inventory",
                "/status/502?set=x-flowmesh-app-unreachable",
            )
            .body(empty())
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(
        response
            .headers()
            .get("x-flowmesh-app-unreachable")
            .is_none()
    );
    assert_eq!(
        (live.hits.load(Relaxed), forging.hits.load(Relaxed)),
        (1, 1)
    );
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_control_plane_down_routing_goes_on_from_the_cached_registry() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, mut cp_stop, cp_task) = control_plane(dir.path()).await;
    let inventory_app = app::start().await;
    let (_inventory, _inventory_stop, _inventory_task) = sidecar(
        "inventory",
        inventory_app.addr,
        &dir.path().join("inventory"),
        &cp,
        "",
    )
    .await;
    let checkout_dir = dir.path().join("checkout");
    let (checkout, mut checkout_stop, checkout_task) =
        sidecar("checkout", inventory_app.addr, &checkout_dir, &cp, "").await;
    routable(&checkout, "inventory", true).await;

    cp_stop.stop();
    cp_task.await.unwrap();
    let ok = |outbound| async move {
        client()
            .request(
                via(outbound, "inventory", "/status/200")
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap()
            .status()
    };
    assert_eq!(ok(checkout.outbound).await, StatusCode::OK);

    // A restart while the control plane is still down starts from the copy in redb.
    checkout_stop.stop();
    checkout_task.await.unwrap();
    let (checkout, _stop, _task) =
        sidecar("checkout", inventory_app.addr, &checkout_dir, &cp, "").await;
    assert!(checkout.registry.pick("inventory").is_ok());
    assert_eq!(ok(checkout.outbound).await, StatusCode::OK);
}

// Tests run on tokio's test runtimes, which have a time driver of their own.
#[allow(clippy::disallowed_methods)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_bound_to_every_interface_registers_addresses_other_hosts_can_dial() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let inventory_app = app::start().await;
    let listen = "local = \"0.0.0.0:0\"\ninbound = \"0.0.0.0:0\"\noutbound = \"127.0.0.1:0\"\nmesh = \"0.0.0.0:0\"";
    let (inventory, _stop, _task) = sidecar_listening(
        "inventory",
        inventory_app.addr,
        &dir.path().join("inventory"),
        &cp,
        listen,
        "",
    )
    .await;
    // The control plane listens on 127.0.0.1: that is the IP this host reaches it from, and
    // what the registry must hold instead of 0.0.0.0 (which another host would take for
    // itself: the monitor would read its own local API, not this sidecar's).
    let want = serde_json::json!({
        "local": format!("127.0.0.1:{}", inventory.local.port()),
        "inbound": format!("127.0.0.1:{}", inventory.inbound.port()),
        "mesh": format!("127.0.0.1:{}", inventory.mesh.port()),
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let services = json(
            client()
                .request(
                    Request::builder()
                        .uri(format!("{cp}/v1/services"))
                        .body(empty())
                        .unwrap(),
                )
                .await
                .unwrap(),
        )
        .await;
        let registered = services["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "inventory")
            .map(|s| s["instances"][0]["addresses"].clone());
        if let Some(addresses) = registered {
            assert_eq!(addresses, want);
            break;
        }
        assert!(Instant::now() < deadline, "never registered: {services}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(inventory.advertised.local.to_string(), want["local"]);
}
