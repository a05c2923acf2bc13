//! The load generator every target gets: HTTP/1.1 with keep-alive from one pooled client.
//! Open loop: requests leave at a fixed rate whatever the answers do, and each latency counts
//! from the moment its request was due (so a stall shows in every request it delays).
//! Closed loop: `connections` workers send back to back, for the saturation throughput.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Where requests go: a URL, and the `Host` to send (the two-hop path names the service).
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) host: Option<String>,
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// One GET with its whole body read; `true` when it answered 200 with 1 KiB.
async fn get(client: &HttpClient, target: &Target) -> bool {
    let mut request = Request::get(&target.url);
    if let Some(host) = &target.host {
        request = request.header("host", host);
    }
    let Ok(request) = request.body(Empty::new()) else {
        return false;
    };
    match client.request(request).await {
        Ok(response) if response.status().is_success() => response
            .into_body()
            .collect()
            .await
            .is_ok_and(|b| b.to_bytes().len() == 1024),
        _ => false,
    }
}

/// Latencies of successful requests, and how many failed.
#[derive(Default)]
pub(crate) struct Latency {
    pub(crate) samples: Vec<Duration>,
    pub(crate) errors: u64,
    /// Requests sent, the warm-up's included (for CPU per request).
    pub(crate) sent: u64,
}

impl Latency {
    pub(crate) fn merge(&mut self, other: Latency) {
        self.samples.extend(other.samples);
        self.errors += other.errors;
        self.sent += other.sent;
    }

    /// The `q` quantile in microseconds, to 0.1 µs.
    pub(crate) fn us(&mut self, q: f64) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.sort_unstable();
        let n = self.samples.len();
        let i = ((n as f64 * q).ceil() as usize).clamp(1, n) - 1;
        (self.samples[i].as_secs_f64() * 1e7).round() / 10.0
    }
}

/// `rate` requests per second for `duration`, after a one-second warm-up at the same rate.
/// A thread of its own paces the requests (sleeping, then spinning the last 100 µs): tokio's
/// timer has a 1 ms grain, which would add up to a millisecond of noise to every figure.
pub(crate) async fn open_loop(
    target: &Target,
    client: &HttpClient,
    rate: u32,
    warmup: Duration,
    duration: Duration,
) -> Latency {
    let interval = Duration::from_secs(1) / rate;
    let total = ((warmup + duration).as_secs_f64() * f64::from(rate)) as u64;
    let counted_from = (warmup.as_secs_f64() * f64::from(rate)) as u64;
    let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let pacer = std::thread::spawn(move || {
        let start = Instant::now() + Duration::from_millis(20);
        for i in 0..total {
            let due = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
            loop {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                let left = due - now;
                if left > Duration::from_micros(100) {
                    std::thread::sleep(left - Duration::from_micros(100));
                } else {
                    std::hint::spin_loop();
                }
            }
            if due_tx.send((i, due)).is_err() {
                return;
            }
        }
    });
    let mut tasks = Vec::with_capacity(total as usize);
    while let Some((i, due)) = due_rx.recv().await {
        let (client, target) = (client.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let ok = get(&client, &target).await;
            (i, ok, due.elapsed())
        }));
    }
    let _ = pacer.join();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((i, ok, took)) = task.await
            && i >= counted_from
        {
            if ok {
                latencies.push(took);
            } else {
                errors += 1;
            }
        }
    }
    Latency {
        samples: latencies,
        errors,
        sent: total,
    }
}

/// Requests per second with `connections` workers back to back for `duration`.
pub(crate) async fn saturate(target: &Target, connections: usize, duration: Duration) -> f64 {
    let client = client();
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + duration;
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, target, done) = (client.clone(), target.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                if get(&client, &target).await && now >= warm_until {
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    done.load(std::sync::atomic::Ordering::Relaxed) as f64 / duration.as_secs_f64()
}
