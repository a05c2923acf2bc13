//! `bench/proxy`: what one and two flowmesh hops add to an HTTP/1.1 request, next to nginx as a
//! plain reverse proxy and a byte relay as the floor, in the same run on the same machine with
//! the same load generator: latency at a fixed offered rate (open loop), saturation
//! throughput, and the sidecar's memory. Human-readable lines go to stderr; the last line on
//! stdout is one JSON object.
//!
//! Usage: `make bench-proxy`, or `cargo run --release -p flowmesh-bench-proxy [-- [--seconds N]
//! [--only TARGET,...] [--pacer-nice N]]`.

mod flowmesh;
mod load;
#[path = "../../engine/src/machine.rs"]
mod machine;
mod matcher;
mod nginx;
mod paired;
#[path = "../../control-plane/src/procs.rs"]
mod procs;
mod relay;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use load::Target;
use procs::Children;

const RATE: u32 = 1000;
/// The targets' names, in the order they are set up (and in the JSON line).
const TARGETS: [&str; 6] = [
    "direct",
    "flowmesh",
    "nginx",
    "relay",
    "two_hops",
    "nginx_twin",
];
const CONNECTIONS: usize = 64;
/// Steal (per cent of CPU time) from which a run's latency tails follow the host rather than
/// the targets: runs with 4.6 % and more had every target's p99 2-10 times that of runs under
/// 2 % (bench/proxy/README.md, seventh round).
const STEAL_WARNING: f64 = 4.0;
/// The length of one open-loop round: short, so that a slow spell of the machine (seconds,
/// on a shared VM) falls on every target alike.
const ROUND: Duration = Duration::from_millis(500);

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

/// User plus system CPU time of a process so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The machine's CPU time so far, in clock ticks: all of it, and what the hypervisor took
/// away from this VM's CPUs (`steal`), from `/proc/stat`.
fn machine_cpu() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    Some((ticks.iter().take(8).sum(), *ticks.get(7)?))
}

/// Waits until `target` answers 200 with 1 KiB.
async fn ready(name: &str, target: &Target) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if load::probe(target).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{name} did not answer within 20 s (see the logs in the run's temp dir)"
    ))
}

async fn bench(
    seconds: u64,
    only: Option<Vec<String>>,
    pacer_nice: Option<i32>,
) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
    let mut children = Children::default();
    let app = nginx::app(dir.path(), &mut children)?;
    let (nginx, nginx_pid) = nginx::proxy(dir.path(), "proxy", app, &mut children)?;
    // The same nginx again: how far two identical proxies land apart in a run is the noise
    // any comparison between proxies in that run has to clear.
    let (twin, twin_pid) = nginx::proxy(dir.path(), "proxy_twin", app, &mut children)?;
    let (relay, relay_pid) = relay::start(dir.path(), app, &mut children)?;
    let mesh = flowmesh::start(dir.path(), app, &mut children)?;
    let targets = [
        (TARGETS[0], Target::new(app, None)),
        (TARGETS[1], Target::new(mesh.inbound, None)),
        (TARGETS[2], Target::new(nginx, None)),
        (TARGETS[3], Target::new(relay, None)),
        (TARGETS[4], Target::new(mesh.outbound, Some("app"))),
        (TARGETS[5], Target::new(twin, None)),
    ];
    // The processes whose CPU time a target's requests cost, beyond the app's.
    let accounted: [Vec<u32>; TARGETS.len()] = [
        vec![],
        vec![mesh.app_sidecar_pid],
        vec![nginx_pid],
        vec![relay_pid],
        vec![mesh.client_sidecar_pid, mesh.app_sidecar_pid],
        vec![twin_pid],
    ];
    // `--only` keeps the named targets (to profile one proxy under the benchmark's load).
    let keep: Vec<bool> = targets
        .iter()
        .map(|(name, _)| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name)))
        .collect();
    let targets: Vec<_> = targets
        .into_iter()
        .zip(&keep)
        .filter_map(|(t, k)| k.then_some(t))
        .collect();
    let accounted: Vec<Vec<u32>> = accounted
        .into_iter()
        .zip(&keep)
        .filter_map(|(a, k)| k.then_some(a))
        .collect();
    for (name, target) in &targets {
        ready(name, target).await?;
    }
    let rss_idle = rss_mib(mesh.app_sidecar_pid);
    let mut json = serde_json::Map::new();
    json.insert("bench".into(), "proxy".into());
    let (bindings, ns) = matcher::ns_per_lookup();
    eprintln!("matching against {bindings} HTTP bindings: {ns} ns per request");
    json.insert("matcher_bindings".into(), bindings.into());
    json.insert("matcher_ns_per_request".into(), ns.into());
    json.insert("rate_per_s".into(), RATE.into());
    json.insert("seconds".into(), seconds.into());
    // Short rounds interleave the targets, the order turning each round, so that a slow spell
    // of the machine hits them all alike. Each target keeps its client (and its pool of
    // connections) across rounds: only its first round needs a long warm-up.
    let mut measured: Vec<load::Latency> =
        targets.iter().map(|_| load::Latency::default()).collect();
    let pools: Vec<_> = targets
        .iter()
        .map(|(_, t)| load::Pool::new(t, pacer_nice))
        .collect();
    let mut cpu = vec![0.0f64; targets.len()];
    // Each round's latencies per target, for the comparisons paired by round.
    let mut by_round: Vec<Vec<Vec<Duration>>> = targets.iter().map(|_| Vec::new()).collect();
    let rounds = (seconds * 1000).div_ceil(ROUND.as_millis() as u64).max(1);
    let machine_before = machine_cpu();
    for r in 0..rounds {
        for k in 0..targets.len() {
            let i = (r as usize + k) % targets.len();
            let warmup = if r == 0 {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(50)
            };
            let before: f64 = accounted[i].iter().map(|p| cpu_seconds(*p)).sum();
            let round = load::open_loop(&pools[i], RATE, warmup, ROUND).await;
            by_round[i].push(round.samples.clone());
            measured[i].merge(round);
            let after: f64 = accounted[i].iter().map(|p| cpu_seconds(*p)).sum();
            cpu[i] += after - before;
        }
    }
    for (i, ((name, _), l)) in targets.iter().zip(&mut measured).enumerate() {
        if !accounted[i].is_empty() {
            // CPU microseconds per request of the proxies in the path (10 ms clock ticks).
            let per = cpu[i] * 1e6 / l.sent.max(1) as f64;
            let per = (per * 10.0).round() / 10.0;
            eprintln!("{name:>9} proxy CPU: {per} µs per request");
            json.insert(format!("{name}_cpu_us_per_request"), per.into());
        }
        let (p50, p99, p999) = (l.us(0.50), l.us(0.99), l.us(0.999));
        eprintln!(
            "{name:>9} at {RATE}/s: p50 {p50:>7.1} µs, p99 {p99:>7.1} µs, p99.9 {p999:>7.1} µs, {} errors",
            l.errors
        );
        json.insert(format!("{name}_p50_us"), p50.into());
        json.insert(format!("{name}_p99_us"), p99.into());
        json.insert(format!("{name}_p999_us"), p999.into());
        json.insert(format!("{name}_errors"), l.errors.into());
    }
    // Against nginx, each other proxy's p50, with how sure the run is of the difference: the
    // twin's is how far apart two identical proxies land.
    if let Some(n) = targets.iter().position(|(name, _)| *name == "nginx") {
        for (i, (name, _)) in targets.iter().enumerate() {
            if i == n || *name == "direct" {
                continue;
            }
            if let Some(d) = paired::difference(&by_round[i], &by_round[n]) {
                eprintln!(
                    "{name:>9} minus nginx at p50: {:+.1} µs (95 %: {:+.1} to {:+.1}, the {} \
                     rounds resampled)",
                    d.p50,
                    d.low,
                    d.high,
                    by_round[i].len()
                );
                json.insert(format!("{name}_minus_nginx_p50_us"), d.p50.into());
                json.insert(
                    format!("{name}_minus_nginx_p50_ci95_us"),
                    vec![d.low, d.high].into(),
                );
            }
        }
    }
    let machine_after = machine_cpu();
    let mut send_lag: Vec<Duration> = measured
        .iter_mut()
        .flat_map(|l| l.send_lag.drain(..))
        .collect();
    let (lag50, lag99) = (
        load::quantile_us(&mut send_lag, 0.50),
        load::quantile_us(&mut send_lag, 0.99),
    );
    eprintln!("load generator sent late by: p50 {lag50:>7.1} µs, p99 {lag99:>7.1} µs");
    if let Some(nice) = measured.iter().find_map(|l| l.pacer_nice.clone()) {
        if let Some(refused) = &nice.refused {
            eprintln!(
                "warning: {refused}; it ran at {} (a nice value under the one the benchmark \
                 starts with needs root or CAP_SYS_NICE)",
                nice.now
            );
        }
        json.insert("pacer_nice".into(), nice.now.into());
    }
    json.insert("send_lag_p50_us".into(), lag50.into());
    json.insert("send_lag_p99_us".into(), lag99.into());
    // A VM's CPUs taken away by the host stall every process at once, for milliseconds: the
    // share of time they were gone during the open loop says how far its tails are the host's.
    if let (Some((t0, s0)), Some((t1, s1))) = (machine_before, machine_after) {
        let pct = s1.saturating_sub(s0) as f64 * 100.0 / t1.saturating_sub(t0).max(1) as f64;
        let pct = (pct * 10.0).round() / 10.0;
        eprintln!("CPU time stolen by the host during the open loop: {pct} %");
        if pct >= STEAL_WARNING {
            eprintln!(
                "warning: the host took {pct} % of this machine's CPU time during the open loop: \
                 the latency tails above are more the host's than the targets'; run again when \
                 the machine is quieter"
            );
        }
        json.insert("steal_pct".into(), pct.into());
    }
    let mut rss_load: f64 = 0.0;
    for (name, target) in &targets {
        // The sidecar's memory, sampled while it is saturated.
        let pid = mesh.app_sidecar_pid;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let sampler = tokio::spawn(async move {
            let mut max: f64 = 0.0;
            while stopped.try_recv().is_err() {
                max = max.max(rss_mib(pid));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            max
        });
        let rps = load::saturate(
            target,
            CONNECTIONS,
            Duration::from_secs(seconds.div_ceil(2)),
        )
        .await;
        let _ = stop.send(());
        let sampled = sampler.await.unwrap_or(0.0);
        if *name == "flowmesh" || *name == "two_hops" {
            rss_load = rss_load.max(sampled);
        }
        eprintln!("{name:>9} saturated with {CONNECTIONS} connections: {rps:>8.0} requests/s");
        json.insert(format!("{name}_max_rps"), rps.round().into());
    }
    eprintln!("flowmesh sidecar RSS: idle {rss_idle} MiB, after load {rss_load} MiB");
    json.insert("rss_idle_mib".into(), rss_idle.into());
    json.insert("rss_load_mib".into(), rss_load.into());
    json.insert("machine".into(), machine::describe().into());
    json.insert("flowmesh_bin".into(), mesh.bin.display().to_string().into());
    drop(children);
    Ok(serde_json::Value::Object(json))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(relay::FLAG) {
        return relay::run(&args[2..]);
    }
    let seconds = match procs::number_arg(&args, "--seconds", 10) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let pacer_nice = match args.iter().position(|a| a == "--pacer-nice") {
        None => None,
        Some(i) => match args.get(i + 1).and_then(|s| s.parse::<i32>().ok()) {
            Some(n) if (-20..=19).contains(&n) => Some(n),
            _ => {
                eprintln!("--pacer-nice needs a nice value from -20 to 19");
                return ExitCode::from(2);
            }
        },
    };
    let only = args
        .iter()
        .position(|a| a == "--only")
        .map(|i| match args.get(i + 1) {
            Some(list) => Ok(list.split(',').map(str::to_owned).collect::<Vec<_>>()),
            None => Err(()),
        });
    let only = match only.transpose() {
        Ok(o) => o,
        Err(()) => {
            eprintln!(
                "--only needs a comma-separated list of targets: {}",
                TARGETS.join(",")
            );
            return ExitCode::from(2);
        }
    };
    if let Some(unknown) = only
        .iter()
        .flatten()
        .find(|n| !TARGETS.contains(&n.as_str()))
    {
        eprintln!(
            "--only: no target named {unknown:?}; the targets are {}",
            TARGETS.join(",")
        );
        return ExitCode::from(2);
    }
    // One thread reads every answer (and runs the saturation's connections), and one paces
    // and writes the open loop's requests: the load generator's share of the two cores stays
    // small and the same for every target.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(seconds, only, pacer_nice)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench/proxy: {e}");
            ExitCode::FAILURE
        }
    }
}
