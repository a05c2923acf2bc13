//! `bench/control-plane`: write throughput and latency of a three-node flowmesh control plane,
//! next to a three-member etcd cluster, on loopback, in the same run, with the same load
//! generator: ~1 KiB writes to the leader from 1 and from 64 concurrent clients.
//! Human-readable lines go to stderr; the last line on stdout is one JSON object.
//!
//! Usage: `make bench-control-plane` (builds `flowmesh`, then runs this), or
//! `cargo run --release -p flowmesh-bench-control-plane [-- --seconds N] [--only flowmesh|etcd]`.

mod etcd;
mod flowmesh;
mod load;
#[path = "../../engine/src/machine.rs"]
mod machine;
mod procs;
mod value;

use std::process::ExitCode;
use std::time::Duration;

use load::{Figures, MakeWrite};

const CLIENTS: [usize; 2] = [1, 64];

async fn measure(system: &str, make: &MakeWrite, seconds: u64) -> Vec<(usize, Figures)> {
    let mut out = Vec::new();
    for clients in CLIENTS {
        let f = load::run(
            clients,
            Duration::from_secs(2),
            Duration::from_secs(seconds),
            make.clone(),
        )
        .await;
        eprintln!(
            "{system:>8}, {clients:>2} clients: {:>7.0} writes/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} errors{}",
            f.writes_per_s,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            f.errors,
            f.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
        out.push((clients, f));
    }
    out
}

fn put(
    json: &mut serde_json::Map<String, serde_json::Value>,
    system: &str,
    figures: &[(usize, Figures)],
) {
    for (clients, f) in figures {
        let round = |x: f64| (x * 100.0).round() / 100.0;
        json.insert(
            format!("{system}_writes_per_s_{clients}"),
            round(f.writes_per_s).into(),
        );
        json.insert(format!("{system}_p50_ms_{clients}"), round(f.p50_ms).into());
        json.insert(format!("{system}_p99_ms_{clients}"), round(f.p99_ms).into());
        json.insert(format!("{system}_errors_{clients}"), f.errors.into());
        json.insert(format!("{system}_writes_{clients}"), f.writes.into());
    }
}

async fn bench(seconds: u64, only: Option<&str>) -> Result<serde_json::Value, String> {
    // Every data dir lives until the end of the run: deleting one (with the filesystem's
    // online discard) stalls the fsyncs of the next measurement.
    let dir = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
    let mut flowmesh_figures = Vec::new();
    if only != Some("etcd") {
        let cluster = flowmesh::start(dir.path()).await?;
        flowmesh_figures =
            measure("flowmesh", &flowmesh::writes(&cluster.leader_url), seconds).await;
    }
    let (mut etcd_figures, mut etcd_version) = (Vec::new(), String::new());
    if only != Some("flowmesh") {
        let cluster = etcd::start(dir.path()).await?;
        etcd_figures = measure("etcd", &etcd::writes(&cluster.leader_url), seconds).await;
        etcd_version = cluster.version.clone();
    }
    let mut json = serde_json::Map::new();
    json.insert("bench".into(), "control-plane".into());
    json.insert("value_bytes".into(), value::registration().len().into());
    json.insert("seconds_per_measurement".into(), seconds.into());
    put(&mut json, "flowmesh", &flowmesh_figures);
    put(&mut json, "etcd", &etcd_figures);
    json.insert("etcd_version".into(), etcd_version.into());
    json.insert("machine".into(), machine::describe().into());
    Ok(serde_json::Value::Object(json))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let seconds = match procs::number_arg(&args, "--seconds", 10) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // `--only flowmesh` or `--only etcd`: one side alone, for profiling.
    let only = match args.iter().position(|a| a == "--only") {
        Some(i) => match args.get(i + 1).map(String::as_str) {
            Some(o @ ("flowmesh" | "etcd")) => Some(o),
            _ => {
                eprintln!("--only takes flowmesh or etcd");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(seconds, only)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench/control-plane: {e}");
            ExitCode::FAILURE
        }
    }
}
