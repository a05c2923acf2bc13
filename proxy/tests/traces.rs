//! One trace per business transaction, read back by an OTLP/HTTP receiver that decodes the
//! official protobuf messages: a chain A → B → C where no app forwards trace headers but all
//! carry the same order id is one trace; an app's own `traceparent` wins; a collector that is
//! down or answers 503 costs traffic nothing and raises the drop counter.

// Tests run on tokio's test runtimes, which have a time driver of their own.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/app.rs"]
mod app;
#[path = "support/mesh.rs"]
mod harness;
#[path = "support/client.rs"]
mod http;
#[path = "support/otlp.rs"]
mod otlp;

use http::{client, full};
use otlp::sink;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::{TOKEN, UP, control_plane, routable, sidecar};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// B's app: on `POST /orders/{id}` it asks C for a shipment through B's outbound proxy, with
/// the order id in a JSON body and no trace headers, then answers.
async fn relay_app(outbound: Arc<Mutex<Option<SocketAddr>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let outbound = outbound.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r: Request<Incoming>| {
                    let outbound = *outbound.lock().unwrap();
                    async move {
                        let id = r.uri().path().rsplit('/').next().unwrap_or("").to_owned();
                        let to_c = Request::post(format!("http://{}/shipments", outbound.unwrap()))
                            .header("host", "c")
                            .header("content-type", "application/json")
                            .body(full(format!(r#"{{"orderId": "{id}", "items": 2}}"#)))
                            .unwrap();
                        let answer = client().request(to_c).await.unwrap();
                        let status = answer.status();
                        let _ = answer.into_body().collect().await;
                        Ok::<_, Infallible>(Response::new(full(format!("shipped via c: {status}"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

const MODEL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
    xmlns:flowmesh="https://flowmesh.dev/schema/bpmn/1.0" id="traced" targetNamespace="t">
  <bpmn:message id="OrderPlaced" name="OrderPlaced">
    <bpmn:extensionElements>
      <zeebe:subscription correlationKey="=orderId"/>
      <flowmesh:http service="b" method="POST" path="/orders/{orderId}" key="path:orderId"/>
    </bpmn:extensionElements>
  </bpmn:message>
  <bpmn:message id="ShipmentRequested" name="ShipmentRequested">
    <bpmn:extensionElements>
      <zeebe:subscription correlationKey="=orderId"/>
      <flowmesh:http service="c" method="POST" path="/shipments" key="=body.orderId"/>
    </bpmn:extensionElements>
  </bpmn:message>
  <bpmn:process id="order-trace" isExecutable="true">
    <bpmn:startEvent id="placed"><bpmn:messageEventDefinition messageRef="OrderPlaced"/></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="placed" targetRef="shipped"/>
    <bpmn:intermediateCatchEvent id="shipped"><bpmn:messageEventDefinition messageRef="ShipmentRequested"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="shipped" targetRef="done"/>
    <bpmn:endEvent id="done"/>
  </bpmn:process>
</bpmn:definitions>"#;

async fn metric(local: SocketAddr, name: &str) -> f64 {
    let answer = client()
        .request(
            Request::get(format!("http://{local}/metrics"))
                .body(full(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let text = String::from_utf8(
        answer
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_without_trace_headers_is_one_trace() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink().await;
    let (cp, _cp_stop, _cp_task) = control_plane(dir.path()).await;
    flowmesh_control_plane::client::Client::new(&cp, Some(TOKEN.to_owned()))
        .deploy(Bytes::from_static(MODEL.as_bytes()), Some("b"))
        .await
        .unwrap();
    let telemetry = format!("[telemetry]\notlp_endpoint = \"http://{}\"\n", sink.addr);
    let c_app = app::start().await;
    let b_outbound = Arc::new(Mutex::new(None));
    let b_app = relay_app(b_outbound.clone()).await;
    let a_app = app::start().await;
    let (c, _c_stop, _c_task) =
        sidecar("c", c_app.addr, &dir.path().join("c"), &cp, &telemetry).await;
    let (b, _b_stop, _b_task) = sidecar("b", b_app, &dir.path().join("b"), &cp, &telemetry).await;
    let (a, _a_stop, _a_task) =
        sidecar("a", a_app.addr, &dir.path().join("a"), &cp, &telemetry).await;
    *b_outbound.lock().unwrap() = Some(b.outbound);
    routable(&a, "b", true).await;
    routable(&b, "c", true).await;
    for handle in [&a, &b, &c] {
        let deadline = Instant::now() + UP;
        while handle.rules.get().len() < 2 {
            assert!(Instant::now() < deadline, "the bindings never arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // A's app places two orders, sending no trace headers; B's app calls C without them too.
    for order in ["4711", "4712"] {
        let answer = client()
            .request(
                Request::post(format!("http://{}/orders/{order}", a.outbound))
                    .header("host", "b")
                    .body(full("{}"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"shipped via c: 200 OK");
    }
    // C's app saw the body B's app sent, and a traceparent the sidecar added.
    let chain = [("a", 3), ("b", 2), ("b", 3), ("c", 2)]; // CLIENT 3, SERVER 2
    let spans = sink.wait_for_each("4711", &chain).await;
    let by = |service: &str, kind: i32| {
        spans
            .iter()
            .find(|s| s.service == service && s.kind == kind)
            .unwrap_or_else(|| panic!("no {service} span of kind {kind}: {spans:#?}"))
            .clone()
    };
    let (server, client_kind) = (2, 3); // SpanKind SERVER, CLIENT
    let a_client = by("a", client_kind);
    let b_server = by("b", server);
    let b_client = by("b", client_kind);
    let c_server = by("c", server);
    for s in [&b_server, &b_client, &c_server] {
        assert_eq!(s.trace_id, a_client.trace_id, "one trace: {spans:#?}");
    }
    assert_eq!(a_client.parent, "", "A's call is the root");
    assert_eq!(b_server.parent, a_client.span_id);
    assert_eq!(
        b_client.parent, b_server.span_id,
        "stitched by the order id"
    );
    assert_eq!(c_server.parent, b_client.span_id);
    assert_eq!(b_server.name, "POST /orders/{orderId}");
    assert_eq!(b_server.attributes["http.route"], "/orders/{orderId}");
    assert_eq!(b_server.attributes["http.response.status_code"], "200");
    assert_eq!(c_server.attributes["http.request.method"], "POST");
    assert!(b_server.events.contains(&"flowmesh.observation".to_owned()));
    assert!(c_server.events.contains(&"flowmesh.observation".to_owned()));
    // The second order is a trace of its own.
    let other = sink.wait_for_each("4712", &chain).await;
    assert!(other.iter().all(|s| s.trace_id != a_client.trace_id));
    assert_eq!(
        other
            .iter()
            .map(|s| &s.trace_id)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1
    );

    // An app's own traceparent wins over the stored context.
    let theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let answer = client()
        .request(
            Request::post(format!("http://{}/orders/4711", a.outbound))
                .header("host", "b")
                .header("traceparent", theirs)
                .body(full("{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let deadline = Instant::now() + UP;
    loop {
        let spans = sink.of_key("4711");
        if let Some(s) = spans
            .iter()
            .find(|s| s.trace_id == "0af7651916cd43dd8448eb211c80319c" && s.service == "a")
        {
            assert_eq!(s.parent, "b7ad6b7169203331");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the app's trace was not continued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Observations are counted.
    assert!(
        metric(
            b.local,
            "flowmesh_observations_total{direction=\"mesh\",message=\"OrderPlaced\"}"
        )
        .await
            >= 3.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_or_refuses_costs_traffic_nothing() {
    let app = app::start().await;
    let sink = sink().await;
    sink.answer.store(503, Ordering::Relaxed);
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for endpoint in [sink.addr, down] {
        let dir = tempfile::tempdir().unwrap();
        let (handle, _stop, _task) = {
            let text = format!(
                "[telemetry]\notlp_endpoint = \"http://{endpoint}\"\nmax_queued_spans = 16\n"
            );
            harness::standalone("a", app.addr, dir.path(), &text).await
        };
        let started = Instant::now();
        let mut slowest = Duration::ZERO;
        for i in 0..300 {
            let t = Instant::now();
            let answer = client()
                .request(
                    Request::get(format!("http://{}/echo/{i}", handle.inbound))
                        .body(full(Bytes::new()))
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            let _ = answer.into_body().collect().await;
            slowest = slowest.max(t.elapsed());
        }
        // Each export attempt backs off for 200 ms and more: had a request waited for one,
        // 300 requests would take minutes.
        assert!(
            started.elapsed() < Duration::from_secs(20) && slowest < Duration::from_secs(1),
            "export slowed traffic: {:?} in all, slowest {slowest:?}",
            started.elapsed()
        );
        let deadline = Instant::now() + UP;
        while metric(handle.local, "flowmesh_dropped_spans_total").await < 1.0 {
            assert!(Instant::now() < deadline, "no span was counted as dropped");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(sink.spans.lock().unwrap().is_empty());
}
