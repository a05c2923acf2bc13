//! The inbound proxy with a real app on 127.0.0.1: what reaches the app and what comes back
//! (headers, bodies of 10 MiB both ways, statuses, HTTP/2 from the caller, upgrades), the
//! proxy's own answers when the app cannot be reached, answers too late, or a body is too big,
//! and HTTP/1 as clients speak it on the wire (pipelining, HEAD, `100 Continue`, HTTP/1.0).

// Tests run on tokio's test runtimes, which have a time driver of their own.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/app.rs"]
mod app;
#[path = "support/mesh.rs"]
mod harness;
#[path = "support/client.rs"]
mod http;

use http::{client, empty, h2_client, json, read_head};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use flowmesh_proxy::Handle;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A sidecar in this process in front of `app`, every listener on a free port.
struct Running {
    handle: Handle,
    _stop: harness::Stopper,
    _dir: tempfile::TempDir,
}

async fn sidecar(app: SocketAddr, limits: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (handle, stop, _task) =
        harness::standalone("payment", app, dir.path(), &format!("[limits]\n{limits}")).await;
    Running {
        handle,
        _stop: stop,
        _dir: dir,
    }
}

#[tokio::test]
async fn headers_reach_the_app_and_hop_by_hop_fields_do_not() {
    let app = app::start().await;
    let s = sidecar(app.addr, "").await;
    let request = Request::builder()
        .uri(format!("http://{}/orders/4711?x=1", s.handle.inbound))
        .header("x-order-id", "4711")
        .header("connection", "keep-alive, x-secret-hop")
        .header("x-secret-hop", "must not pass")
        .header("proxy-authorization", "Basic abc")
        .body(empty())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), hyper::Version::HTTP_11);
    let echo = json(response).await;
    assert_eq!(echo["path"], "/orders/4711");
    assert_eq!(echo["query"], "x=1");
    let headers = &echo["headers"];
    assert_eq!(headers["x-order-id"], "4711");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["host"], s.handle.inbound.to_string());
    for hop in ["x-secret-hop", "proxy-authorization", "connection"] {
        assert!(
            headers.get(hop).is_none(),
            "{hop} reached the app: {headers}"
        );
    }
}

#[tokio::test]
async fn statuses_and_their_headers_come_back_unchanged() {
    let app = app::start().await;
    let s = sidecar(app.addr, "").await;
    for code in [200u16, 201, 204, 301, 404, 409, 500, 503] {
        let request = Request::builder()
            .uri(format!("http://{}/status/{code}", s.handle.inbound))
            .body(empty())
            .unwrap();
        let response = client().request(request).await.unwrap();
        assert_eq!(response.status().as_u16(), code);
        assert_eq!(response.headers()["x-app"], "yes");
    }
    let metrics = reqwest_text(&format!("http://{}/metrics", s.handle.local)).await;
    assert!(
        metrics.contains(
            r#"flowmesh_requests_total{direction="inbound",route="other",status="409"} 1"#
        ),
        "{metrics}"
    );
}

/// GET with the test client, as text.
async fn reqwest_text(url: &str) -> String {
    let request = Request::builder().uri(url).body(empty()).unwrap();
    let response = client().request(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn ten_mib_bodies_stream_both_ways() {
    let app = app::start().await;
    let s = sidecar(app.addr, "").await;
    const N: u64 = 10 * 1024 * 1024;

    // Upload in chunks of unknown total length (chunked), checked byte by byte by the app.
    let chunks = (0..N).step_by(256 * 1024).map(|start| {
        let end = (start + 256 * 1024).min(N);
        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(
            (start..end).map(app::pattern).collect::<Vec<u8>>(),
        )))
    });
    let body = StreamBody::new(futures_util::stream::iter(chunks)).boxed();
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/upload", s.handle.inbound))
        .body(body)
        .unwrap();
    let echo = json(client().request(request).await.unwrap()).await;
    assert_eq!(echo["body_bytes"], N);
    assert_eq!(echo["body_is_pattern"], true);

    // Download, checked the same way.
    let request = Request::builder()
        .uri(format!("http://{}/download?bytes={N}", s.handle.inbound))
        .body(empty())
        .unwrap();
    let mut body = client().request(request).await.unwrap().into_body();
    let mut at = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            for b in data.iter() {
                assert_eq!(*b, app::pattern(at), "byte {at}");
                at += 1;
            }
        }
    }
    assert_eq!(at, N);
}

#[tokio::test]
async fn http2_callers_reach_an_http1_app() {
    let app = app::start().await;
    let s = sidecar(app.addr, "").await;
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/h2", s.handle.inbound))
        .header("x-order-id", "h2-1")
        .body(
            Full::new(Bytes::from(
                (0..1000).map(app::pattern).collect::<Vec<u8>>(),
            ))
            .boxed(),
        )
        .unwrap();
    let response = h2_client().request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let echo = json(response).await;
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["headers"]["x-order-id"], "h2-1");
    assert_eq!(echo["headers"]["host"], s.handle.inbound.to_string());
    assert_eq!(echo["body_bytes"], 1000);
}

#[tokio::test]
async fn an_upgrade_is_spliced_through_to_the_app() {
    let app = app::start().await;
    let s = sidecar(app.addr, "").await;
    let mut stream = tokio::net::TcpStream::connect(s.handle.inbound)
        .await
        .unwrap();
    stream
        .write_all(
            b"GET /chat HTTP/1.1\r\nhost: payment\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut stream).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    for message in [&b"hello"[..], b"through the sidecar", &[0u8, 255, 7]] {
        stream.write_all(message).await.unwrap();
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, message);
    }
}

#[tokio::test]
async fn a_client_connection_outlives_the_apps_connections() {
    let app = app::start().await;
    let running = sidecar(app.addr, "").await;
    // One keep-alive client connection; the app closes its side after every other answer.
    let mut stream = tokio::net::TcpStream::connect(running.handle.inbound)
        .await
        .unwrap();
    for i in 0..6 {
        let path = if i % 2 == 0 { "/close" } else { "/again" };
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: app\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "request {i}: {head}");
        // The app's `connection: close` is hop-by-hop: the client's connection stays open.
        assert!(
            !head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap();
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.unwrap();
    }
    assert_eq!(app.hits.load(std::sync::atomic::Ordering::Relaxed), 6);
}

#[tokio::test]
async fn the_proxy_answers_502_504_and_413_itself() {
    // Nothing listens on the app's port: 502 that says where it tried.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = free.local_addr().unwrap();
    drop(free);
    let s = sidecar(gone, "").await;
    let request = Request::builder()
        .uri(format!("http://{}/x", s.handle.inbound))
        .body(empty())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = json(response).await;
    assert_eq!(body["error"], "upstream_unreachable");
    assert!(body["detail"].as_str().unwrap().contains(&gone.to_string()));
    let ready = client()
        .request(
            Request::builder()
                .uri(format!("http://{}/readyz", s.handle.local))
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    let app = app::start().await;
    let s = sidecar(
        app.addr,
        "request_timeout = \"200ms\"\nmax_body_bytes = 1000\n",
    )
    .await;
    // The app never answers: 504 after the request timeout.
    let request = Request::builder()
        .uri(format!("http://{}/never", s.handle.inbound))
        .body(empty())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client().request(request))
        .await
        .expect("the proxy answers")
        .unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(json(response).await["error"], "upstream_timeout");

    // Too big, declared: 413 before anything reaches the app.
    let before = app.hits.load(std::sync::atomic::Ordering::Relaxed);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/upload", s.handle.inbound))
        .body(Full::new(Bytes::from(vec![0u8; 5000])).boxed())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.hits.load(std::sync::atomic::Ordering::Relaxed), before);

    // Too big, streamed without a length: 413 once the limit is passed.
    let chunks = (0..10)
        .map(|_| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![1u8; 500]))));
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/upload", s.handle.inbound))
        .body(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// A raw connection to the sidecar's inbound port with `bytes` already sent on it.
async fn wire(s: &Running, bytes: &[u8]) -> tokio::net::TcpStream {
    let mut conn = tokio::net::TcpStream::connect(s.handle.inbound)
        .await
        .unwrap();
    conn.write_all(bytes).await.unwrap();
    conn
}

/// Reads one answer whose body has a `Content-Length` (or none, for 1xx, 204 and HEAD).
async fn answer(stream: &mut tokio::net::TcpStream, bodiless: bool) -> (String, Vec<u8>) {
    let head = read_head(stream).await;
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; if bodiless { 0 } else { length }];
    stream.read_exact(&mut body).await.unwrap();
    (head, body)
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_unread_bodies_do_not_end_the_connection() {
    let app = app::start().await;
    let s = sidecar(app.addr, "").await;
    let mut conn = tokio::net::TcpStream::connect(s.handle.inbound)
        .await
        .unwrap();
    // Three requests in one write; the second's body the app never reads.
    conn.write_all(
        b"GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n\
          POST /status/202 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
          POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, body) = answer(&mut conn, false).await;
    assert!(head.starts_with("HTTP/1.1 201 Created\r\n"), "{head}");
    assert!(head.contains("x-app: yes"), "{head}");
    assert_eq!(body, b"status 201");
    let (head, _) = answer(&mut conn, false).await;
    assert!(head.starts_with("HTTP/1.1 202 Accepted\r\n"), "{head}");
    let (head, body) = answer(&mut conn, false).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body_bytes"], 3);
    // HEAD: the head only, and the connection goes on.
    conn.write_all(
        b"HEAD /status/200 HTTP/1.1\r\nHost: a\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, body) = answer(&mut conn, true).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.is_empty());
    let (head, _) = answer(&mut conn, true).await;
    assert!(head.starts_with("HTTP/1.1 204 No Content\r\n"), "{head}");
    assert_eq!(app.hits.load(std::sync::atomic::Ordering::Relaxed), 5);
}

/// The header-read timeout counts from each answer: a kept connection whose client pauses
/// for less than it between requests stays open past the first deadline, and one that goes
/// quiet is closed that long after its last answer.
#[tokio::test]
async fn a_kept_connection_closes_a_header_read_timeout_after_its_last_answer() {
    let app = app::start().await;
    let s = sidecar(app.addr, "header_read_timeout = \"1s\"").await;
    let mut conn = tokio::net::TcpStream::connect(s.handle.inbound)
        .await
        .unwrap();
    let opened = std::time::Instant::now();
    let mut last_answer = opened;
    // The client's pauses: 600 ms each, three of them, well past the first second.
    for i in 0..4 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        conn.write_all(b"GET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = answer(&mut conn, false).await;
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n"),
            "request {i}: {head}"
        );
        last_answer = std::time::Instant::now();
    }
    assert!(opened.elapsed() > Duration::from_millis(1800));
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest))
        .await
        .expect("the sidecar closes the quiet connection");
    assert_eq!(read.unwrap(), 0, "nothing is sent on an idle connection");
    let quiet = last_answer.elapsed();
    assert!(
        quiet >= Duration::from_millis(900),
        "closed after {quiet:?}"
    );
}

/// The local API is served with the data plane's limits: a client that starts a head and never
/// finishes it gets 408 and a closed connection after the header-read time (it is bound beyond
/// loopback where Prometheus scrapes the pod), and its requests are counted by route template.
#[tokio::test]
async fn the_local_api_closes_an_unfinished_head_and_counts_its_requests() {
    let app = app::start().await;
    let s = sidecar(app.addr, "header_read_timeout = \"1s\"").await;
    let mut slow = tokio::net::TcpStream::connect(s.handle.local)
        .await
        .unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest))
        .await
        .expect("the local API closes a connection whose head never ends")
        .unwrap();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 408 "), "{rest}");
    assert!(started.elapsed() >= Duration::from_millis(900));

    assert_eq!(
        reqwest_text(&format!("http://{}/healthz", s.handle.local)).await,
        "ok\n"
    );
    let request = Request::builder()
        .uri(format!("http://{}/no/such/page", s.handle.local))
        .body(empty())
        .unwrap();
    assert_eq!(client().request(request).await.unwrap().status(), 404);
    let metrics = reqwest_text(&format!("http://{}/metrics", s.handle.local)).await;
    for series in [
        r#"flowmesh_requests_total{direction="local",route="/healthz",status="200"} 1"#,
        r#"flowmesh_requests_total{direction="local",route="unmatched",status="404"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
}

#[tokio::test]
async fn a_client_that_expects_100_continue_gets_it_before_it_sends_the_body() {
    let app = app::start().await;
    let s = sidecar(app.addr, "").await;
    let mut conn = wire(
        &s,
        b"PUT /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n",
    )
    .await;
    // Nothing of the body is sent until the go-ahead comes.
    let go = tokio::time::timeout(Duration::from_secs(10), read_head(&mut conn))
        .await
        .expect("no 100 Continue came");
    assert_eq!(go, "HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all(b"abcdef").await.unwrap();
    let (head, body) = answer(&mut conn, false).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["body_bytes"], 6);
}

#[tokio::test]
async fn an_http_1_0_client_gets_an_answer_of_unknown_length_until_the_connection_closes() {
    let app = app::start().await;
    let s = sidecar(app.addr, "").await;
    let mut conn = wire(
        &s,
        b"GET /download?bytes=200000 HTTP/1.0\r\nHost: a\r\n\r\n",
    )
    .await;
    let head = read_head(&mut conn).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(head.contains("connection: close\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    let mut body = Vec::new();
    conn.read_to_end(&mut body).await.unwrap();
    assert_eq!(body.len(), 200_000);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, b)| *b == app::pattern(i as u64))
    );
    // The same from an HTTP/1.1 client comes in chunks on a connection that stays open.
    let mut conn = wire(&s, b"GET /download?bytes=10 HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let head = read_head(&mut conn).await;
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    assert!(head.contains("date: "), "{head}");
    // An HTTP/1.0 request may come without a Host; the app gets one that names it.
    let mut conn = wire(&s, b"GET /orders/1 HTTP/1.0\r\n\r\n").await;
    let head = read_head(&mut conn).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    let mut body = Vec::new();
    conn.read_to_end(&mut body).await.unwrap();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["headers"]["host"], app.addr.to_string());
}

#[tokio::test]
async fn a_chunk_that_breaks_after_the_head_went_on_fails_the_request_with_400() {
    let app = app::start().await;
    let s = sidecar(app.addr, "").await;
    let mut conn = wire(
        &s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    )
    .await;
    // The head reached the app; then the framing breaks.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.hits.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the head never reached the app"
        );
        tokio::task::yield_now().await;
    }
    conn.write_all(b"zz\r\n").await.unwrap();
    let (head, body) = answer(&mut conn, false).await;
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(head.contains("connection: close\r\n"), "{head}");
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"], "body_malformed", "{error}");
}

#[tokio::test]
async fn a_stop_closes_idle_connections_and_lets_a_request_under_way_finish() {
    // An app that answers /slow only when told to, anything else at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = listener.local_addr().unwrap();
    let (release, released) = tokio::sync::watch::channel(false);
    let (arrived, mut request_arrived) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let (mut released, arrived) = (released.clone(), arrived.clone());
            tokio::spawn(async move {
                loop {
                    let head = read_head(&mut conn).await;
                    if head.starts_with("GET /slow ") {
                        arrived.send(()).unwrap();
                        released.wait_for(|r| *r).await.unwrap();
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone";
                    if conn.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (handle, mut stop, task) = harness::standalone(
        "payment",
        app_addr,
        dir.path(),
        "[limits]\ndrain_timeout = \"30s\"",
    )
    .await;
    // Kept alive after one answer, then idle; and one that never sent a byte.
    let mut idle = tokio::net::TcpStream::connect(handle.inbound)
        .await
        .unwrap();
    idle.write_all(b"GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = answer(&mut idle, false).await;
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && body == b"done",
        "{head}"
    );
    let mut fresh = tokio::net::TcpStream::connect(handle.inbound)
        .await
        .unwrap();
    let mut busy = tokio::net::TcpStream::connect(handle.inbound)
        .await
        .unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    request_arrived.recv().await.unwrap();

    stop.stop();
    // The idle connections end without waiting for their header-read timeout.
    for conn in [&mut idle, &mut fresh] {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
            .await
            .expect("an idle connection stayed open after the stop")
            .unwrap();
        assert!(rest.is_empty());
    }
    // The request under way is answered whole, and its connection ends after it.
    release.send(true).unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), busy.read_to_end(&mut answer))
        .await
        .expect("the busy connection was not closed after its answer")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\ndone"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the sidecar did not stop once its connections ended")
        .unwrap();
}
