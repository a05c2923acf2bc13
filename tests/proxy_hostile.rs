//! The sidecar (the real `flowmesh proxy` process) under hostile input: a corpus of more than a
//! hundred malformed or hostile HTTP/1 requests (smuggling with Content-Length and
//! Transfer-Encoding, repeated lengths, obsolete line folding, header floods, bad chunk sizes,
//! oversized bodies, slow headers, absurd request targets) each answered with the right 4xx or a
//! closed connection, none reaching the app, while good traffic flows beside them and the
//! sidecar's memory stays bounded; and HTTP/2 rapid reset met with GOAWAY.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/announced.rs"]
mod announced;
#[path = "../proxy/tests/support/app.rs"]
mod app;
#[path = "../proxy/tests/support/client.rs"]
mod http;

use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_BODY: u64 = 1024 * 1024;

/// What the sidecar must do with a hostile request.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Answer with one of these statuses (and then it may close).
    Status(&'static [u16]),
    /// Answer with one of these statuses, or close without answering.
    StatusOrClose(&'static [u16]),
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
    /// Sent in pieces with this pause between them (slow headers).
    trickle: Option<Duration>,
}

fn case(name: impl Into<String>, bytes: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name: name.into(),
        bytes: bytes.into(),
        expect,
        trickle: None,
    }
}

const BAD: Expect = Expect::Status(&[400]);
const TOO_LARGE_HEAD: Expect = Expect::Status(&[431]);

fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    // Smuggling: both framings, in either order, any spelling.
    for (i, (cl, te)) in [
        ("Content-Length: 4", "Transfer-Encoding: chunked"),
        ("content-length: 4", "transfer-encoding: chunked"),
        ("CONTENT-LENGTH: 0", "TRANSFER-ENCODING: CHUNKED"),
        ("Content-Length: 4", "Transfer-Encoding: gzip, chunked"),
        ("Content-Length: 4", "Transfer-Encoding:  chunked "),
        ("Content-Length: 100", "Transfer-Encoding: chunked"),
        ("Content-Length: 4", "Transfer-Encoding: identity"),
    ]
    .iter()
    .enumerate()
    {
        let body = "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n";
        cases.push(case(
            format!("cl then te {i}"),
            format!("POST /h HTTP/1.1\r\nHost: app\r\n{cl}\r\n{te}\r\n\r\n{body}"),
            BAD,
        ));
        cases.push(case(
            format!("te then cl {i}"),
            format!("POST /h HTTP/1.1\r\nHost: app\r\n{te}\r\n{cl}\r\n\r\n{body}"),
            BAD,
        ));
    }
    // Repeated or unparsable lengths.
    for (i, lengths) in [
        "Content-Length: 4\r\nContent-Length: 4",
        "Content-Length: 4\r\nContent-Length: 40",
        "Content-Length: 4\r\ncontent-length: 5",
        "Content-Length: 4, 4",
        "Content-Length: 4,5",
        "Content-Length: -4",
        "Content-Length: +4",
        "Content-Length: 0x4",
        "Content-Length: 4e1",
        "Content-Length: 99999999999999999999999",
        "Content-Length: four",
        "Content-Length: ",
    ]
    .iter()
    .enumerate()
    {
        cases.push(case(
            format!("bad length {i}"),
            format!("POST /h HTTP/1.1\r\nHost: app\r\n{lengths}\r\n\r\nabcd"),
            BAD,
        ));
    }
    // Transfer codings a proxy cannot frame.
    for (i, te) in [
        "Transfer-Encoding: xchunked",
        "Transfer-Encoding: chunked, gzip",
        "Transfer-Encoding: gzip",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
    ]
    .iter()
    .enumerate()
    {
        cases.push(case(
            format!("bad coding {i}"),
            format!("POST /h HTTP/1.1\r\nHost: app\r\n{te}\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"),
            BAD,
        ));
    }
    cases.push(case(
        "chunked in HTTP/1.0",
        "POST /h HTTP/1.0\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        BAD,
    ));
    // Obsolete line folding and other broken field lines.
    for (i, field) in [
        "X-Folded: a\r\n b",
        "X-Folded: a\r\n\tb",
        "Content-Length: 4\r\n 4",
        "Host: app\r\n  more",
        "X-Space : a",
        "X-Tab\t: a",
        "No-Colon",
        ": no-name",
        "X-Nul: a\0b",
        "X-Ctl: a\x01b",
        "X-Del: a\x7fb",
        "X(paren): a",
        "X@at: a",
        "X\"quote\": a",
    ]
    .iter()
    .enumerate()
    {
        cases.push(case(
            format!("bad field {i}"),
            format!("GET /h HTTP/1.1\r\nHost: app\r\n{field}\r\n\r\n"),
            BAD,
        ));
    }
    // Header floods: too many fields, too big a head.
    for n in [101, 200, 1000, 5000] {
        let fields: String = (0..n).map(|i| format!("X-F{i}: v\r\n")).collect();
        cases.push(case(
            format!("{n} fields"),
            format!("GET /h HTTP/1.1\r\nHost: app\r\n{fields}\r\n"),
            TOO_LARGE_HEAD,
        ));
    }
    for kib in [65, 128, 512, 1024] {
        cases.push(case(
            format!("one {kib} KiB field"),
            format!(
                "GET /h HTTP/1.1\r\nHost: app\r\nX-Big: {}\r\n\r\n",
                "v".repeat(kib * 1024)
            ),
            TOO_LARGE_HEAD,
        ));
    }
    for kib in [65, 256] {
        cases.push(case(
            format!("a {kib} KiB path"),
            format!(
                "GET /{} HTTP/1.1\r\nHost: app\r\n\r\n",
                "a".repeat(kib * 1024)
            ),
            Expect::Status(&[414, 431]),
        ));
    }
    // Invalid chunk framing, sent with the head (nothing is forwarded).
    for (i, body) in [
        "zz\r\nab\r\n0\r\n\r\n",
        "-1\r\na\r\n0\r\n\r\n",
        "\r\n",
        " 4\r\nabcd\r\n0\r\n\r\n",
        "0x4\r\nabcd\r\n0\r\n\r\n",
        "fffffffffffffffff\r\n",
        "ffffffffffffffffffffffffffffffff\r\nab\r\n",
        "4\nabcd\r\n0\r\n\r\n",
        "4\r\nabcdXX0\r\n\r\n",
        "4\r\nabcd\n0\r\n\r\n",
        "4;\0\r\nabcd\r\n0\r\n\r\n",
        "4\r\nabcd\r\n0\r\nbad trailer\n\n",
    ]
    .iter()
    .enumerate()
    {
        cases.push(case(
            format!("bad chunk {i}"),
            format!("POST /h HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n{body}"),
            BAD,
        ));
    }
    cases.push(case(
        "an endless chunk extension",
        format!(
            "POST /h HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n4;{}\r\nabcd\r\n0\r\n\r\n",
            "e".repeat(64 * 1024)
        ),
        BAD,
    ));
    // Bodies over the limit, declared up front.
    for n in [MAX_BODY + 1, 10 * MAX_BODY, 1 << 40, u64::MAX / 2] {
        cases.push(case(
            format!("a {n}-byte body"),
            format!("POST /h HTTP/1.1\r\nHost: app\r\nContent-Length: {n}\r\n\r\nabcd"),
            Expect::Status(&[413]),
        ));
    }
    // Absurd request lines and targets.
    for (i, line) in [
        "GET  /h HTTP/1.1",
        "GET /h  HTTP/1.1",
        "GET /h HTTP/1.1 extra",
        "GET /h\0 HTTP/1.1",
        "GET /h\x01 HTTP/1.1",
        "GET /h\x7f HTTP/1.1",
        "GET /a b HTTP/1.1",
        "GET /h HTTP/1.2",
        "GET /h HTTP/2.0",
        "GET /h HTTP/9.9",
        "GET /h HTTP/1",
        "GET /h http/1.1",
        "GET /h",
        "GET",
        "G\x01T /h HTTP/1.1",
        "GE T /h HTTP/1.1",
        "GET\t/h HTTP/1.1",
        "/h HTTP/1.1",
        " GET /h HTTP/1.1",
        "GET h HTTP/1.1",
        "GET :// HTTP/1.1",
        "GET http://[::1 HTTP/1.1",
        "GET http:// HTTP/1.1",
        "GET \u{00e9} HTTP/1.1",
    ]
    .iter()
    .enumerate()
    {
        cases.push(case(
            format!("bad line {i}"),
            format!("{line}\r\nHost: app\r\n\r\n"),
            Expect::Status(&[400, 505]),
        ));
    }
    // Host missing, repeated or not a host (RFC 9112 section 3.2): two values would let the
    // proxy route by one while the app reads the other.
    for (i, fields) in [
        "",
        "Host: app\r\nHost: evil\r\n",
        "Host: app\r\nhost: app\r\n",
        "Host: user@app\r\n",
        "Host: app/x\r\n",
        "Host: a p p\r\n",
        "Host: app:port\r\n",
    ]
    .iter()
    .enumerate()
    {
        cases.push(case(
            format!("bad host {i}"),
            format!("GET /h HTTP/1.1\r\n{fields}\r\n"),
            Expect::Status(&[400]),
        ));
    }
    // Binary junk and a TLS ClientHello sent to a plain-text port.
    cases.push(case(
        "tls hello",
        vec![
            0x16, 0x03, 0x01, 0x00, 0x50, 0x01, 0x00, 0x00, 0x4c, 0x03, 0x03,
        ],
        Expect::StatusOrClose(&[400]),
    ));
    cases.push(case(
        "nul bytes",
        vec![0u8; 4096],
        Expect::StatusOrClose(&[400]),
    ));
    // Slow headers: a head that never completes within the header-read timeout.
    for (i, start) in [
        "GET /h HTTP/1.1\r\n",
        "GET /h HTTP/1.1\r\nHost: app\r\nX-A: ",
        "GET /h HTTP/1.1\r\nHost: app\r\n",
    ]
    .iter()
    .enumerate()
    {
        let mut slow = case(
            format!("slow headers {i}"),
            format!("{start}X-Slow: 1\r\nX-Slow: 2\r\nX-Slow: 3\r\n"),
            Expect::StatusOrClose(&[408]),
        );
        slow.trickle = Some(Duration::from_millis(400));
        cases.push(slow);
    }
    cases
}

/// The first status line's code, or `None` if the connection closed without one.
fn status_of(answer: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(answer.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))?
        .parse()
        .ok()
}

/// Sends one case on a fresh connection and reads until the sidecar closes.
async fn send(port: u16, c: &Case) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    match c.trickle {
        None => {
            // The sidecar may answer and close before it read everything; that is fine.
            let _ = stream.write_all(&c.bytes).await;
        }
        Some(pause) => {
            for piece in c.bytes.chunks(8) {
                if stream.write_all(piece).await.is_err() {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
        }
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "{}: the sidecar kept the connection open: {:?}",
        c.name,
        String::from_utf8_lossy(&answer)
    );
    answer
}

struct Sidecar {
    child: Child,
    inbound: u16,
    local: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn sidecar(app: std::net::SocketAddr) -> Sidecar {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sidecar.toml");
    std::fs::write(
        &file,
        format!(
            "service = \"app\"\ndata_dir = \"{}\"\n[app]\naddress = \"{app}\"\n\
             [listen]\nlocal = \"127.0.0.1:0\"\ninbound = \"127.0.0.1:0\"\noutbound = \"127.0.0.1:0\"\nmesh = \"127.0.0.1:0\"\n\
             [telemetry]\notlp_endpoint = \"none\"\n\
             [limits]\nmax_body_bytes = {MAX_BODY}\nheader_read_timeout = \"1s\"\nmax_concurrent_streams = 100\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let started = announced::proxy(&file);
    Sidecar {
        child: started.child,
        inbound: started.inbound.port(),
        local: started.local.port(),
        _dir: dir,
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Good requests on keep-alive connections until `stop`; returns how many succeeded and the
/// slowest.
async fn good_traffic(port: u16, stop: Arc<AtomicBool>) -> (u64, Duration) {
    let client = http::client();
    let (mut ok, mut slowest) = (0u64, Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let request = hyper::Request::post(format!("http://127.0.0.1:{port}/good?n={ok}"))
            .body(http::full(Bytes::from_static(b"good body")))
            .unwrap();
        let response = client.request(request).await.expect("good request failed");
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(echo["path"], "/good");
        assert_eq!(echo["body_bytes"], 9);
        slowest = slowest.max(started.elapsed());
        ok += 1;
    }
    (ok, slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_and_good_traffic_goes_on() {
    let app = app::start().await;
    let sidecar = sidecar(app.addr).await;
    let pid = sidecar.child.id();
    let corpus = Arc::new(corpus());
    assert!(corpus.len() >= 100, "the corpus has {} cases", corpus.len());
    let rss_before = rss_kib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let good = tokio::spawn(good_traffic(sidecar.inbound, stop.clone()));
    let mut failures = Vec::new();
    // Three passes, eight connections at a time: memory must not grow with the number sent.
    for _ in 0..3 {
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..8 {
            let corpus = corpus.clone();
            let port = sidecar.inbound;
            tasks.spawn(async move {
                let mut wrong = Vec::new();
                for c in corpus.iter().skip(worker).step_by(8) {
                    let answer = send(port, c).await;
                    let status = status_of(&answer);
                    let fine = match (c.expect, status) {
                        (Expect::Status(allowed), Some(s)) => allowed.contains(&s),
                        (Expect::Status(_), None) => false,
                        (Expect::StatusOrClose(allowed), Some(s)) => allowed.contains(&s),
                        (Expect::StatusOrClose(_), None) => true,
                    };
                    if !fine {
                        wrong.push(format!(
                            "{}: wanted {:?}, got {:?}",
                            c.name,
                            c.expect,
                            String::from_utf8_lossy(&answer[..answer.len().min(120)])
                        ));
                    }
                }
                wrong
            });
        }
        while let Some(wrong) = tasks.join_next().await {
            failures.extend(wrong.unwrap());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (good_ok, slowest) = good.await.unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Only the good requests reached the app.
    assert_eq!(app.hits.load(Ordering::Relaxed), good_ok);
    assert!(good_ok > 0);
    assert!(
        slowest < Duration::from_secs(2),
        "a good request took {slowest:?} while the corpus ran"
    );
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 32 * 1024,
        "the sidecar grew from {rss_before} KiB to {rss_after} KiB"
    );
    // The refusals are counted by reason.
    let mut metrics = TcpStream::connect(("127.0.0.1", sidecar.local))
        .await
        .unwrap();
    metrics
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    metrics.read_to_string(&mut text).await.unwrap();
    assert!(
        text.contains(
            r#"flowmesh_refused_requests_total{direction="inbound",reason="content_length_and_transfer_encoding"} 42"#
        ),
        "{text}"
    );
}

/// One HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_is_met_with_goaway() {
    let app = app::start().await;
    let sidecar = sidecar(app.addr).await;
    let mut stream = TcpStream::connect(("127.0.0.1", sidecar.inbound))
        .await
        .unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    // GET / over http, from the static table; each stream opened, then cancelled at once.
    let sent = 5000u32;
    for i in 0..sent {
        let id = 1 + 2 * i;
        out.extend(frame(0x1, 0x5, id, &[0x82, 0x86, 0x84]));
        out.extend(frame(0x3, 0, id, &8u32.to_be_bytes())); // RST_STREAM CANCEL
    }
    let _ = stream.write_all(&out).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 16384];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the sidecar kept the connection open");
    // Walk the frames it sent: one of them is GOAWAY.
    let (mut at, mut goaway) = (0, None);
    while at + 9 <= answer.len() {
        let len = (usize::from(answer[at]) << 16)
            | (usize::from(answer[at + 1]) << 8)
            | usize::from(answer[at + 2]);
        if answer[at + 3] == 0x7 && at + 17 <= answer.len() {
            goaway = Some(u32::from_be_bytes(
                answer[at + 13..at + 17].try_into().unwrap(),
            ));
        }
        at += 9 + len;
    }
    // ENHANCE_YOUR_CALM (0xb) or PROTOCOL_ERROR: either way the connection is cut.
    assert!(goaway.is_some(), "no GOAWAY in {} bytes", answer.len());
    // Most cancelled streams never reached the app.
    let hits = app.hits.load(Ordering::Relaxed);
    assert!(
        hits < u64::from(sent) / 10,
        "{hits} of {sent} cancelled requests reached the app"
    );
    // And the sidecar still serves.
    let ok = tokio::time::timeout(Duration::from_secs(5), good_traffic_once(sidecar.inbound))
        .await
        .unwrap();
    assert!(ok);
}

async fn good_traffic_once(port: u16) -> bool {
    let client = http::client();
    let request = hyper::Request::get(format!("http://127.0.0.1:{port}/after"))
        .body(http::empty())
        .unwrap();
    client
        .request(request)
        .await
        .is_ok_and(|r| r.status() == 200)
}
