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

use harness::{control_plane, routable, sidecar, sidecar_listening};
use http::{client, empty, json, read_head};

use std::net::SocketAddr;
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

// Tests run on tokio's test runtimes, which have a time driver of their own.
#[allow(clippy::disallowed_methods)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_to_the_instance_that_is_not_busy() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let apps = [app::start().await, app::start().await];
    let mut sidecars = Vec::new();
    for (k, app) in apps.iter().enumerate() {
        let home = dir.path().join(format!("inventory-{k}"));
        sidecars.push(sidecar("inventory", app.addr, &home, &cp, "").await);
    }
    let checkout_app = app::start().await;
    let (checkout, _stop, _task) = sidecar(
        "checkout",
        checkout_app.addr,
        &dir.path().join("checkout"),
        &cp,
        "",
    )
    .await;
    let deadline = Instant::now() + harness::UP;
    while checkout.registry.instances("inventory").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second instance never showed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // One request that the app never answers keeps one instance busy.
    let outbound = checkout.outbound;
    let held = tokio::spawn(async move {
        client()
            .request(via(outbound, "inventory", "/never").body(empty()).unwrap())
            .await
    });
    let hits = |k: usize| apps[k].hits.load(std::sync::atomic::Ordering::Relaxed);
    let deadline = Instant::now() + harness::UP;
    while hits(0) + hits(1) == 0 {
        assert!(Instant::now() < deadline, "the held request reached no app");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let busy = if hits(0) == 1 { 0 } else { 1 };

    // Round robin would send half of these to the busy one; all go to the other.
    for _ in 0..20 {
        let response = client()
            .request(
                via(checkout.outbound, "inventory", "/items/1")
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!((hits(busy), hits(1 - busy)), (1, 20));
    held.abort();
}

// Tests run on tokio's test runtimes, which have a time driver of their own.
#[allow(clippy::disallowed_methods)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_an_instance_refused_goes_to_another_body_and_all() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let inventory_app = app::start().await;
    let (_inventory, _inventory_stop, _inventory_task) = sidecar(
        "inventory",
        inventory_app.addr,
        &dir.path().join("inventory"),
        &cp,
        "",
    )
    .await;
    let checkout_app = app::start().await;
    let (checkout, _stop, _task) = sidecar(
        "checkout",
        checkout_app.addr,
        &dir.path().join("checkout"),
        &cp,
        "",
    )
    .await;
    routable(&checkout, "inventory", true).await;

    // The live instance is busy with a request its app never answers...
    let outbound = checkout.outbound;
    let held = tokio::spawn(async move {
        client()
            .request(via(outbound, "inventory", "/never").body(empty()).unwrap())
            .await
    });
    let hits = || {
        inventory_app
            .hits
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let deadline = Instant::now() + harness::UP;
    while hits() == 0 {
        assert!(Instant::now() < deadline, "the held request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...so the next request goes to a second instance, one whose port refuses connections
    // (bound, never listening: no other test can take the port meanwhile).
    let dead = tokio::net::TcpSocket::new_v4().unwrap();
    dead.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let registration = flowmesh_proto::control::RegisterRequest {
        addresses: [("mesh".to_owned(), dead.local_addr().unwrap().to_string())].into(),
        lease_seconds: 60,
        topics: Vec::new(),
    };
    flowmesh_control_plane::client::Client::new(&cp, Some(harness::TOKEN.to_owned()))
        .register("inventory", "inventory-gone", &registration)
        .await
        .unwrap();
    let deadline = Instant::now() + harness::UP;
    while checkout.registry.count("inventory") < 2 {
        assert!(
            Instant::now() < deadline,
            "the second instance never showed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // It refuses; the request, body and all, goes on to the live one.
    let response = client()
        .request(
            via(checkout.outbound, "inventory", "/items/2")
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
    assert_eq!(hits(), 2);
    // The refusing instance is passed over from then on.
    for _ in 0..5 {
        let response = client()
            .request(
                via(checkout.outbound, "inventory", "/status/204")
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(hits(), 7);
    held.abort();
}

// Tests run on tokio's test runtimes, which have a time driver of their own.
#[allow(clippy::disallowed_methods)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_fails_fast_does_not_draw_the_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    let inventory_app = app::start().await;
    let (_inventory, _inventory_stop, _inventory_task) = sidecar(
        "inventory",
        inventory_app.addr,
        &dir.path().join("inventory"),
        &cp,
        "",
    )
    .await;
    let checkout_app = app::start().await;
    let (checkout, _stop, _task) = sidecar(
        "checkout",
        checkout_app.addr,
        &dir.path().join("checkout"),
        &cp,
        "",
    )
    .await;
    routable(&checkout, "inventory", true).await;
    let outbound = checkout.outbound;
    let held = tokio::spawn(async move {
        client()
            .request(via(outbound, "inventory", "/never").body(empty()).unwrap())
            .await
    });
    let deadline = Instant::now() + harness::UP;
    while inventory_app
        .hits
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(Instant::now() < deadline, "the held request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A second instance whose sidecar is up but whose app is not: it answers 502 at once,
    // which would make it look like the fastest instance of all.
    let gone = tokio::net::TcpSocket::new_v4().unwrap();
    gone.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let (_broken, _broken_stop, _broken_task) = sidecar(
        "inventory",
        gone.local_addr().unwrap(),
        &dir.path().join("inventory-broken"),
        &cp,
        "",
    )
    .await;
    let deadline = Instant::now() + harness::UP;
    while checkout.registry.count("inventory") < 2 {
        assert!(
            Instant::now() < deadline,
            "the second instance never showed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut statuses = Vec::new();
    for _ in 0..30 {
        let response = client()
            .request(
                via(checkout.outbound, "inventory", "/status/200")
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    // Five gateway failures in a row pass it over; the rest reach the live instance.
    let mut wanted = vec![502; 5];
    wanted.resize(30, 200);
    assert_eq!(statuses, wanted);
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
