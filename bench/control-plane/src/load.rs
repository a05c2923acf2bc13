//! The load generator both systems get: `clients` concurrent workers, each sending one write at a
//! time over its own keep-alive connection pool and waiting for the answer (closed loop), for a
//! fixed time after a warm-up. Latency is measured per write, from send to full answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowmesh_control_plane::http::HttpClient;
use hyper::Method;

/// One write to send: worker `w`'s `n`th.
pub(crate) struct Write {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Bytes,
}

pub(crate) type MakeWrite = Arc<dyn Fn(usize, u64) -> Write + Send + Sync>;

#[derive(Debug)]
pub(crate) struct Figures {
    pub(crate) writes: u64,
    pub(crate) errors: u64,
    pub(crate) writes_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) first_error: Option<String>,
}

/// Runs `clients` workers for `warmup` (not counted), then for `measure`.
pub(crate) async fn run(
    clients: usize,
    warmup: Duration,
    measure: Duration,
    make: MakeWrite,
) -> Figures {
    let begin = Instant::now();
    let counted_from = begin + warmup;
    let end = counted_from + measure;
    let mut workers = Vec::new();
    for w in 0..clients {
        let make = make.clone();
        workers.push(tokio::spawn(async move {
            // One pool per worker: its own connection, as a separate client process would have.
            let http = HttpClient::new();
            let mut latencies = Vec::new();
            let (mut errors, mut first_error) = (0u64, None);
            let mut n = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let write = make(w, n);
                n += 1;
                let headers: Vec<(&str, &str)> = write
                    .headers
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .collect();
                let answer = http
                    .send(
                        write.method,
                        &write.url,
                        &headers,
                        write.body,
                        Duration::from_secs(10),
                    )
                    .await;
                let took = sent.elapsed();
                let ok = match answer {
                    Ok(reply) if reply.status.is_success() => true,
                    Ok(reply) => {
                        first_error.get_or_insert_with(|| {
                            format!(
                                "HTTP {}: {}",
                                reply.status,
                                String::from_utf8_lossy(&reply.body)
                            )
                        });
                        false
                    }
                    Err(e) => {
                        first_error.get_or_insert_with(|| e.to_string());
                        false
                    }
                };
                if sent >= counted_from {
                    if ok {
                        latencies.push(took);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut latencies = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for worker in workers {
        if let Ok((l, e, f)) = worker.await {
            latencies.extend(l);
            errors += e;
            first_error = first_error.or(f);
        }
    }
    latencies.sort_unstable();
    let ms = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    Figures {
        writes: latencies.len() as u64,
        errors,
        writes_per_s: latencies.len() as f64 / measure.as_secs_f64(),
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        max_ms: ms(1.0),
        first_error,
    }
}
