//! `bench/monitor`: a control plane and five sidecars of one service, a 50-element model, and
//! 100,000 completed instances spread evenly over the sidecars (started through their local
//! APIs; state in redb with fsync, as in production). Measured: the model page's data
//! (`GET /v1/monitor/models/{process}`: every sidecar asked and merged), the model page itself
//! (`/ui/models/{process}`: that, plus the diagram and the first page of instances), and paging
//! through the instance list. Human-readable lines go to stderr; the last line on stdout is
//! one JSON object.
//!
//! Usage: `make bench-monitor`, or
//! `cargo run --release -p flowmesh-bench-monitor [-- --instances N --sidecars N]`.

#[path = "../../runtime/src/api.rs"]
mod api;
#[path = "../../engine/src/machine.rs"]
mod machine;
#[path = "../../control-plane/src/procs.rs"]
mod procs;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use api::call;
use bytes::Bytes;
use flowmesh_control_plane::client::Client;
use flowmesh_control_plane::http::HttpClient;
use hyper::Method;
use procs::{Children, free_port, spawn};

const TOKEN: &str = "bench-token";
const PROCESS: &str = "monitored";
/// Starters per sidecar while seeding.
const CONCURRENT: usize = 12;
/// Requests per measured figure.
const SAMPLES: usize = 200;
const BRANCHES: usize = 4;
const PER_BRANCH: usize = 11;

/// start → split → 4 branches of 11 tasks → merge → 2 tasks → end: 50 elements.
fn model() -> String {
    let mut body = String::new();
    let mut flows = String::new();
    let mut flow = |from: &str, to: &str, condition: Option<String>| {
        let id = format!("f-{from}-{to}");
        match condition {
            Some(c) => flows.push_str(&format!(
                "<bpmn:sequenceFlow id=\"{id}\" sourceRef=\"{from}\" targetRef=\"{to}\"><bpmn:conditionExpression>{c}</bpmn:conditionExpression></bpmn:sequenceFlow>\n"
            )),
            None => flows.push_str(&format!(
                "<bpmn:sequenceFlow id=\"{id}\" sourceRef=\"{from}\" targetRef=\"{to}\" />\n"
            )),
        }
    };
    body.push_str("<bpmn:startEvent id=\"start\" />\n<bpmn:exclusiveGateway id=\"split\" />\n<bpmn:exclusiveGateway id=\"merge\" />\n");
    flow("start", "split", None);
    for b in 0..BRANCHES {
        for t in 0..PER_BRANCH {
            body.push_str(&format!(
                "<bpmn:task id=\"b{b}-t{t}\" name=\"Branch {b} step {t}\" />\n"
            ));
            if t == 0 {
                flow("split", &format!("b{b}-t0"), Some(format!("=branch = {b}")));
            } else {
                flow(&format!("b{b}-t{}", t - 1), &format!("b{b}-t{t}"), None);
            }
        }
        flow(&format!("b{b}-t{}", PER_BRANCH - 1), "merge", None);
    }
    body.push_str("<bpmn:task id=\"after-1\" />\n<bpmn:task id=\"after-2\" />\n<bpmn:endEvent id=\"end\" />\n");
    flow("merge", "after-1", None);
    flow("after-1", "after-2", None);
    flow("after-2", "end", None);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<bpmn:definitions xmlns:bpmn=\"http://www.omg.org/spec/BPMN/20100524/MODEL\" id=\"bench-monitor\" targetNamespace=\"http://flowmesh.dev/bench\">\n<bpmn:process id=\"{PROCESS}\" isExecutable=\"true\">\n{body}{flows}</bpmn:process>\n</bpmn:definitions>\n"
    )
}

/// A control plane and `n` sidecars of service `bench`; the control plane's URL and the
/// sidecars' local API URLs.
fn start(
    dir: &std::path::Path,
    n: usize,
    children: &mut Children,
) -> Result<(String, Vec<String>), String> {
    let bin = procs::flowmesh_binary("bench-monitor")?;
    let cp_port = procs::control_plane(&bin, dir, TOKEN, children)?;
    let token = dir.join("token");
    let mut locals = Vec::new();
    for i in 1..=n {
        let local = free_port()?;
        let config = dir.join(format!("sidecar-{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "service = \"bench\"\ninstance = \"bench-{i}\"\ndata_dir = \"{data}\"\ncontrol_plane = [\"http://127.0.0.1:{cp_port}\"]\ntoken_file = \"{token}\"\n\
                 [app]\naddress = \"127.0.0.1:9\"\n\
                 [listen]\nlocal = \"127.0.0.1:{local}\"\ninbound = \"127.0.0.1:0\"\noutbound = \"127.0.0.1:0\"\nmesh = \"127.0.0.1:0\"\n\
                 [telemetry]\notlp_endpoint = \"none\"\n",
                data = dir.join(format!("sidecar-{i}")).display(),
                token = token.display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        spawn(
            &bin,
            &["proxy", "--config", &config.display().to_string()],
            &dir.join(format!("sidecar-{i}.log")),
            children,
        )?;
        locals.push(format!("http://127.0.0.1:{local}"));
    }
    Ok((format!("http://127.0.0.1:{cp_port}"), locals))
}

/// Milliseconds of `samples` sequential calls of `f`, sorted.
async fn timed<F: std::future::Future<Output = Result<(), String>>>(
    samples: usize,
    mut f: impl FnMut(usize) -> F,
) -> Result<Vec<f64>, String> {
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = Instant::now();
        f(i).await?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    let v = sorted
        .get(i.min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    (v * 10.0).round() / 10.0
}

async fn bench(instances: usize, sidecars: usize) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut children = Children::default();
    let (cp, locals) = start(dir.path(), sidecars, &mut children)?;
    let http = HttpClient::new();
    let control = Client::new(&cp, Some(TOKEN.to_owned()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while control
        .deploy(Bytes::from(model()), Some("bench"))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            return Err("the control plane did not take the model within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for local in &locals {
        loop {
            let models = call(&http, Method::GET, &format!("{local}/v1/models"), "").await;
            if models.is_ok_and(|m| m["models"][0]["process"] == PROCESS) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{local} did not deploy the model within 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eprintln!("machine: {}", machine::describe());

    // Seed: the instances, evenly over the sidecars, each through one branch.
    let seeding = Instant::now();
    let per_sidecar = instances / sidecars;
    let mut tasks = Vec::new();
    for local in &locals {
        for worker in 0..CONCURRENT {
            let (http, local) = (http.clone(), local.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = worker;
                while i < per_sidecar {
                    let body = format!(
                        r#"{{"process": "{PROCESS}", "business_key": "order-{i}", "variables": {{"branch": {}}}}}"#,
                        i % BRANCHES
                    );
                    call(&http, Method::POST, &format!("{local}/v1/instances"), &body).await?;
                    i += CONCURRENT;
                }
                Ok::<(), String>(())
            }));
        }
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let total = per_sidecar * sidecars;
    let model_url = format!("{cp}/v1/monitor/models/{PROCESS}");
    loop {
        let view = call(&http, Method::GET, &model_url, "").await?;
        let completed = view["instances"]["completed"].as_u64().unwrap_or(0) as usize;
        if completed == total {
            break;
        }
        if seeding.elapsed() > Duration::from_secs(1800) {
            return Err(format!(
                "{completed} of {total} instances completed in 30 minutes"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seed_s = seeding.elapsed().as_secs_f64();
    eprintln!("seeded {total} instances over {sidecars} sidecars in {seed_s:.0} s");

    // The model page's data: every sidecar asked, merged.
    let view = call(&http, Method::GET, &model_url, "").await?;
    // Flow nodes: the process's own entry is not one of the 50.
    let elements = view["elements"]
        .as_object()
        .map_or(0, |e| e.keys().filter(|k| *k != PROCESS).count());
    let ok = view["sidecars"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|s| s["state"] == "ok").count());
    if ok != sidecars {
        return Err(format!(
            "only {ok} of {sidecars} sidecars answered: {}",
            view["sidecars"]
        ));
    }
    let data = timed(SAMPLES, |_| {
        let (http, url) = (http.clone(), model_url.clone());
        async move { call(&http, Method::GET, &url, "").await.map(|_| ()) }
    })
    .await?;
    // The page itself: that, the diagram, the first instances.
    let page_url = format!("{cp}/ui/models/{PROCESS}");
    let html = timed(SAMPLES / 4, |_| {
        let (http, url) = (http.clone(), page_url.clone());
        async move {
            let reply = http
                .send(
                    Method::GET,
                    &url,
                    &[],
                    Bytes::new(),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|e| e.to_string())?;
            if reply.status.is_success() {
                Ok(())
            } else {
                Err(format!("{url}: {}", reply.status))
            }
        }
    })
    .await?;
    // Paging: 50 pages of 100 from the start, each asking every sidecar for one page only.
    let mut cursor = String::new();
    let mut listed = 0usize;
    let mut list = Vec::with_capacity(50);
    for _ in 0..50 {
        let url = format!("{cp}/v1/monitor/models/{PROCESS}/instances?limit=100&cursor={cursor}");
        let t = Instant::now();
        let page = call(&http, Method::GET, &url, "").await?;
        list.push(t.elapsed().as_secs_f64() * 1000.0);
        listed += page["items"].as_array().map_or(0, Vec::len);
        cursor = page["next"]
            .as_str()
            .ok_or("the list ended early")?
            .replace('@', "%40")
            .replace(',', "%2C");
    }
    list.sort_by(f64::total_cmp);
    eprintln!(
        "model data p50 {} ms p99 {} ms; model page p50 {} ms p99 {} ms; list page of 100 p50 {} ms p99 {} ms ({listed} listed)",
        quantile(&data, 0.5),
        quantile(&data, 0.99),
        quantile(&html, 0.5),
        quantile(&html, 0.99),
        quantile(&list, 0.5),
        quantile(&list, 0.99)
    );
    Ok(serde_json::json!({
        "bench": "monitor",
        "machine": machine::describe(),
        "instances": total,
        "sidecars": sidecars,
        "elements": elements,
        "model_page_p50_ms": quantile(&data, 0.5),
        "model_page_p99_ms": quantile(&data, 0.99),
        "model_html_p50_ms": quantile(&html, 0.5),
        "model_html_p99_ms": quantile(&html, 0.99),
        "list_page_p50_ms": quantile(&list, 0.5),
        "list_page_p99_ms": quantile(&list, 0.99),
        "samples": SAMPLES,
        "seed_seconds": seed_s.round(),
    }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (instances, sidecars) = match (
        procs::number_arg(&args, "--instances", 100_000),
        procs::number_arg(&args, "--sidecars", 5),
    ) {
        (Ok(i), Ok(s)) => (i as usize, s as usize),
        (Err(code), _) | (_, Err(code)) => return code,
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
    match runtime.block_on(bench(instances, sidecars)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench/monitor: {e}");
            ExitCode::from(1)
        }
    }
}
