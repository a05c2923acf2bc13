//! `bench/runtime`: one sidecar runs the engine benchmark's three-service-task model; its app
//! answers every job at once (three HTTP job calls per instance); instances are started
//! through the local API. Measured: completed instances per second at saturation, and
//! start-to-completion latency (from the moment a start was due to the instance's end) at a
//! fixed offered rate of 200/s. State is in redb with fsync on every commit, as in production.
//! Human-readable lines go to stderr; the last line on stdout is one JSON object.
//!
//! Usage: `make bench-runtime`, or `cargo run --release -p flowmesh-bench-runtime [-- --seconds N]`.

#[path = "api.rs"]
mod api;
#[path = "../../engine/src/machine.rs"]
mod machine;
#[path = "../../control-plane/src/procs.rs"]
mod procs;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use api::call;
use bytes::Bytes;
use flowmesh_control_plane::client::Client;
use flowmesh_control_plane::http::HttpClient;
use hyper::Method;
use procs::{Children, free_port, spawn};

const TOKEN: &str = "bench-token";
const MODEL: &str = include_str!("../../engine/models/three-tasks.bpmn");
const RATE: u64 = 200;
/// Starters at saturation: enough to keep the engine's group commit full.
const CONCURRENT: usize = 64;

/// The app: every job completes at once with one output variable.
async fn app(calls: Arc<AtomicU64>) -> Result<u16, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let router = axum::Router::new().route(
        "/jobs/{name}",
        axum::routing::post(move || {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::Relaxed);
                axum::Json(serde_json::json!({"done": true}))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(port)
}

/// A control plane and the sidecar; returns the sidecar's local API base URL and pid.
fn start(
    dir: &Path,
    app_port: u16,
    children: &mut Children,
) -> Result<(String, String, u32), String> {
    let bin = procs::flowmesh_binary("bench-runtime")?;
    let cp_port = procs::control_plane(&bin, dir, TOKEN, children)?;
    let token = dir.join("token");
    let local = free_port()?;
    let config = dir.join("sidecar.toml");
    std::fs::write(
        &config,
        format!(
            "service = \"bench\"\ndata_dir = \"{data}\"\ncontrol_plane = [\"http://127.0.0.1:{cp_port}\"]\ntoken_file = \"{token}\"\n\
             [app]\naddress = \"127.0.0.1:{app_port}\"\n\
             [listen]\nlocal = \"127.0.0.1:{local}\"\ninbound = \"127.0.0.1:0\"\noutbound = \"127.0.0.1:0\"\nmesh = \"127.0.0.1:0\"\n\
             [telemetry]\notlp_endpoint = \"none\"\n\
             [jobs]\nt1 = {{ http = \"POST /jobs/t1\" }}\nt2 = {{ http = \"POST /jobs/t2\" }}\nt3 = {{ http = \"POST /jobs/t3\" }}\n",
            data = dir.join("sidecar").display(),
            token = token.display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    let pid = spawn(
        &bin,
        &["proxy", "--config", &config.display().to_string()],
        &dir.join("sidecar.log"),
        children,
    )?;
    Ok((
        format!("http://127.0.0.1:{cp_port}"),
        format!("http://127.0.0.1:{local}"),
        pid,
    ))
}

/// Starts one instance; its key, or why not.
async fn create(http: &HttpClient, local: &str) -> Result<u64, String> {
    let answer = call(
        http,
        Method::POST,
        &format!("{local}/v1/instances"),
        r#"{"process": "three-tasks", "variables": {"amount": 42}}"#,
    )
    .await?;
    answer["key"]
        .as_str()
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| format!("no key in {answer}"))
}

/// When each completed instance ended (ms since the epoch), keys in `after..`.
async fn ended(http: &HttpClient, local: &str) -> Result<BTreeMap<u64, i64>, String> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{local}/v1/instances?state=completed&limit=1000");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page = call(http, Method::GET, &url, "").await?;
        for item in page["items"].as_array().into_iter().flatten() {
            let key = item["key"].as_str().and_then(|k| k.parse().ok());
            let at = item["ended_at"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok());
            if let (Some(k), Some(t)) = (key, at) {
                out.insert(k, t.as_millisecond());
            }
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return Ok(out),
        }
    }
}

fn ms_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Waits until every instance in `keys` completed; their end times.
async fn completion(
    http: &HttpClient,
    local: &str,
    keys: &[u64],
) -> Result<BTreeMap<u64, i64>, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = ended(http, local).await?;
        if keys.iter().all(|k| done.contains_key(k)) {
            return Ok(done);
        }
        if Instant::now() > deadline {
            let missing = keys.iter().filter(|k| !done.contains_key(k)).count();
            return Err(format!("{missing} instances did not complete within 120 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn quantile(sorted: &[i64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64
}

async fn bench(seconds: u64) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut children = Children::default();
    let calls = Arc::new(AtomicU64::new(0));
    let app_port = app(calls.clone()).await?;
    let (cp, local, pid) = start(dir.path(), app_port, &mut children)?;
    let http = HttpClient::new();

    // Deploy once the control plane answers, then wait until the sidecar runs the model.
    let control = Client::new(&cp, Some(TOKEN.to_owned()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while control
        .deploy(Bytes::from_static(MODEL.as_bytes()), Some("bench"))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            return Err("the control plane did not take the model within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let models = call(&http, Method::GET, &format!("{local}/v1/models"), "").await;
        if models.is_ok_and(|m| m["models"][0]["process"] == "three-tasks") {
            break;
        }
        if Instant::now() > deadline {
            return Err("the sidecar did not deploy the model within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("machine: {}", machine::describe());

    // Saturation: CONCURRENT starters back to back for `seconds`; completions in the window.
    let window_start = SystemTime::now();
    let stop = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENT {
        let (http, local) = (http.clone(), local.clone());
        tasks.push(tokio::spawn(async move {
            let mut keys = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < stop {
                match create(&http, &local).await {
                    Ok(k) => keys.push(k),
                    Err(_) => errors += 1,
                }
            }
            (keys, errors)
        }));
    }
    let mut started = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (keys, e) = t.await.map_err(|e| e.to_string())?;
        started.extend(keys);
        errors += e;
    }
    let done = completion(&http, &local, &started).await?;
    let (from, to) = (
        ms_since_epoch(window_start),
        ms_since_epoch(window_start) + 1000 * seconds as i64,
    );
    let in_window = started
        .iter()
        .filter(|k| done.get(k).is_some_and(|at| *at >= from && *at < to))
        .count();
    let max_pi_per_s = in_window as f64 / seconds as f64;
    eprintln!(
        "saturation: {} started, {in_window} completed within {seconds} s: {max_pi_per_s:.0} instances/s ({errors} refused starts, {} job calls)",
        started.len(),
        calls.load(Ordering::Relaxed)
    );
    // Let the backlog drain before the latency run.
    completion(&http, &local, &started).await?;

    // Latency: starts due every 1/RATE s (open loop), from the due time to the instance's end.
    let interval = Duration::from_micros(1_000_000 / RATE);
    let total = RATE * seconds;
    let begin = Instant::now();
    let wall = SystemTime::now();
    let mut pending = Vec::new();
    for i in 0..total {
        let due = begin + interval * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
        let due_ms = ms_since_epoch(wall + (due - begin));
        let (http, local) = (http.clone(), local.clone());
        pending.push(tokio::spawn(async move {
            create(&http, &local).await.map(|k| (k, due_ms))
        }));
    }
    let mut due_of = Vec::new();
    let mut latency_errors = 0u64;
    for p in pending {
        match p.await.map_err(|e| e.to_string())? {
            Ok(kd) => due_of.push(kd),
            Err(_) => latency_errors += 1,
        }
    }
    let keys: Vec<u64> = due_of.iter().map(|(k, _)| *k).collect();
    let done = completion(&http, &local, &keys).await?;
    let mut latencies: Vec<i64> = due_of
        .iter()
        .filter_map(|(k, due)| done.get(k).map(|end| (end - due).max(0)))
        .collect();
    latencies.sort_unstable();
    let (p50, p99) = (quantile(&latencies, 0.5), quantile(&latencies, 0.99));
    eprintln!(
        "at {RATE}/s: start to completion p50 {p50} ms, p99 {p99} ms, p99.9 {} ms ({latency_errors} refused)",
        quantile(&latencies, 0.999)
    );
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0);
    Ok(serde_json::json!({
        "bench": "runtime",
        "machine": machine::describe(),
        "seconds": seconds,
        "max_pi_per_s": max_pi_per_s.round(),
        "saturation_started": started.len(),
        "saturation_errors": errors,
        "rate_per_s": RATE,
        "p50_ms_at_200": p50,
        "p99_ms_at_200": p99,
        "p999_ms_at_200": quantile(&latencies, 0.999),
        "latency_errors": latency_errors,
        "job_calls": calls.load(Ordering::Relaxed),
        "rss_after_mib": rss,
    }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let seconds = match procs::number_arg(&args, "--seconds", 10) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(bench(seconds)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench/runtime: {e}");
            ExitCode::from(1)
        }
    }
}
