//! `flowmesh demo`: the journey on one machine. It starts a control plane and the
//! order-fulfillment example (five apps, each behind its own sidecar), then runs the stages:
//! track (observe a choreography), act (a timer on it), orchestrate (the sidecars run the
//! processes) and change (a new version rolled out by business key). It places orders through
//! the checkout app, shows progress, and prints a table per stage.

mod mesh;
mod report;
mod stage;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{Value, json};

use mesh::Mesh;
use report::{Outcome, StageReport};
use stage::Stage;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StageArg {
    All,
    Track,
    Act,
    Orchestrate,
    Change,
}

/// Run the journey from tracking to orchestration on this machine: a control plane and five
/// services behind their sidecars, orders placed, a table per stage.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Which stage to run; `all` runs them in order.
    #[arg(long, value_enum, default_value = "all")]
    stage: StageArg,
    /// Orders per stage.
    #[arg(long, default_value = "20")]
    orders: u64,
    /// Orders placed per second.
    #[arg(long, default_value = "10")]
    rate: f64,
    /// Exit when the stages are done: 0 when every order reached its expected end, 1 if not.
    #[arg(long)]
    exit: bool,
    /// Export the traces (OTLP/HTTP, e.g. http://127.0.0.1:4318 of a Jaeger all-in-one).
    #[arg(long)]
    otlp_endpoint: Option<String>,
    /// Also write every order's outcome per stage to this file, as JSON.
    #[arg(long, value_name = "FILE")]
    report: Option<std::path::PathBuf>,
    /// What carries the events: the sidecars' mesh bus, or a Kafka cluster (then the apps
    /// speak Kafka through their sidecars, and the sidecars use Kafka as their bus).
    #[arg(long, value_enum, default_value = "mesh")]
    bus: BusArg,
    /// The Kafka cluster for `--bus kafka` (`HOST:PORT,...`).
    #[arg(long, value_name = "HOST:PORT")]
    kafka_bootstrap: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BusArg {
    Mesh,
    Kafka,
}

pub(crate) fn run(args: Args) -> ExitCode {
    crate::service::init_logging("warn");
    if args.orders == 0 || !args.rate.is_finite() || args.rate <= 0.0 {
        eprintln!("flowmesh demo: --orders and --rate must be above 0");
        return ExitCode::from(2);
    }
    if (args.bus == BusArg::Kafka) != args.kafka_bootstrap.is_some() {
        eprintln!(
            "flowmesh demo: --bus kafka and --kafka-bootstrap HOST:PORT go together (the Kafka cluster to use)"
        );
        return ExitCode::from(2);
    }
    if let Some(e) = &args.otlp_endpoint
        && flowmesh_proxy::telemetry::export::traces_uri(e).is_none()
    {
        eprintln!(
            "flowmesh demo: --otlp-endpoint '{e}' must be an http:// URL with a host (like http://127.0.0.1:4318)"
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flowmesh demo: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        tokio::select! {
            code = demo(&args) => code,
            () = crate::service::shutdown_signal() => {
                eprintln!("\nflowmesh demo: stopped; every process it started is stopped too");
                ExitCode::from(130)
            }
        }
    })
}

async fn demo(args: &Args) -> ExitCode {
    let stages: Vec<Stage> = match args.stage {
        StageArg::All => Stage::ALL.to_vec(),
        StageArg::Track => vec![Stage::Track],
        StageArg::Act => vec![Stage::Act],
        StageArg::Orchestrate => vec![Stage::Orchestrate],
        StageArg::Change => vec![Stage::Change],
    };
    println!(
        "flowmesh demo: a control plane and checkout, order, payment, inventory, shipping, each behind its sidecar"
    );
    if let Some(b) = &args.kafka_bootstrap {
        println!("  events on Kafka at {b}: the apps produce and consume through their sidecars");
    }
    let mut mesh = match Mesh::start(
        args.otlp_endpoint.as_deref(),
        args.kafka_bootstrap.as_deref(),
    )
    .await
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("flowmesh demo: {e}");
            return ExitCode::from(1);
        }
    };
    println!("  logs and data: {}", mesh.dir().display());
    let mut deployed: Vec<&str> = Vec::new();
    let mut all_ok = true;
    let mut reports = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        let first = u64::try_from(i).unwrap_or(0) * 1000 + 1;
        match run_stage(&mut mesh, *stage, args, first, &mut deployed).await {
            Ok(r) => {
                print!("{}", r.table());
                all_ok &= r.failed() == 0;
                reports.push(r.json());
                if let Some(file) = &args.report {
                    let text = serde_json::to_string_pretty(&json!({"stages": reports}))
                        .unwrap_or_default();
                    if let Err(e) = std::fs::write(file, text) {
                        eprintln!("flowmesh demo: cannot write {}: {e}", file.display());
                        return ExitCode::from(1);
                    }
                }
            }
            Err(e) => {
                eprintln!("flowmesh demo: stage {}: {e}", stage.name());
                return ExitCode::from(1);
            }
        }
    }
    let order = mesh.sidecars.get("order").cloned().unwrap_or_default();
    println!("\nLook around:");
    println!(
        "  monitor: {}/ui/   (every model on its diagram, live)",
        mesh.control_plane
    );
    println!("  flowmesh instances --sidecar {order} --process order");
    println!("  flowmesh instance KEY --sidecar {order}      (history, variables, trace id)");
    match &args.otlp_endpoint {
        Some(e) => println!(
            "  traces went to {e}: search a trace id from `flowmesh instance` in your tracing UI"
        ),
        None => println!(
            "  traces: run again with --otlp-endpoint http://127.0.0.1:4318 next to a Jaeger all-in-one"
        ),
    }
    if args.exit {
        return if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    println!("\nThe mesh keeps running; Ctrl-C stops it.");
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}

/// Deploys what the stage needs, places its orders and follows them to their ends.
async fn run_stage(
    mesh: &mut Mesh,
    stage: Stage,
    args: &Args,
    first: u64,
    deployed: &mut Vec<&'static str>,
) -> Result<StageReport, String> {
    println!("\n== stage {}: {}", stage.name(), stage.about());
    let mut order = mesh.sidecars.get("order").cloned().unwrap_or_default();
    let process = stage.process();
    let mut versions: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut revision = 0;
    for (file, xml, owner) in stage.models() {
        if deployed.contains(&file) {
            continue;
        }
        let (r, got) = mesh.deploy(xml, owner).await?;
        revision = revision.max(r);
        for (p, v) in got {
            if p == process {
                versions.insert(file, v);
            }
        }
        deployed.push(file);
    }
    mesh.synced(revision).await?;
    let want = versions.values().copied().max().unwrap_or(1);
    let http = mesh.http.clone();
    let models_url = format!("{order}/v1/models");
    mesh.until(
        &format!("{process} running in the order sidecar"),
        Duration::from_secs(30),
        || {
            let (http, url) = (http.clone(), models_url.clone());
            async move {
                mesh::get(&http, &url).await.is_some_and(|m| {
                    m["models"].as_array().is_some_and(|ms| {
                        ms.iter().any(|x| {
                            x["process"] == process
                                && x["version"].as_u64() >= Some(u64::from(want))
                        })
                    })
                })
            }
        },
    )
    .await?;
    mesh.set_mode(stage.mode()).await?;
    let before = element_counts(mesh, &order, process).await;
    let v2 = versions.get("order-v2.bpmn").copied();

    let started = Instant::now();
    let tty = std::io::stdout().is_terminal();
    // Orders come in as a caller would send them: through checkout's sidecar.
    let checkout = mesh
        .inbound
        .get("checkout")
        .copied()
        .ok_or("no checkout sidecar")?;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut outcomes: BTreeMap<u64, Outcome> = BTreeMap::new();
    let mut weights_of: BTreeMap<u64, &'static str> = BTreeMap::new();
    let mut weights_now = "";
    let last = first + args.orders - 1;
    let mut progress = report::Progress::new(stage.name(), args.orders, tty);
    for n in first..=last {
        if let Some(v) = v2 {
            // Stage change: half the orders at 50/50, the other half at 0/100.
            let weights: &[(u32, u32)] = if n == first {
                &[(v - 1, 50), (v, 50)]
            } else if n == first + args.orders / 2 {
                &[(v - 1, 0), (v, 100)]
            } else {
                &[]
            };
            if !weights.is_empty() {
                let r = mesh.rollout(process, weights).await?;
                mesh.synced(r).await?;
                weights_now = if weights[0].1 == 50 { "50/50" } else { "0/100" };
            }
            weights_of.insert(n, weights_now);
        }
        let due = started + interval.mul_f64((n - first) as f64);
        tokio::time::sleep_until(due.into()).await;
        mesh.call(
            Method::PUT,
            &format!("http://{checkout}/api/cart/order"),
            Some(&json!({"orderId": format!("order-{n}")})),
        )
        .await
        .map_err(|e| format!("placing order-{n}: {e}"))?;
        outcomes.insert(n, Outcome::default());
        progress.placed(n - first + 1);
        if !follow(mesh, &order, process, &mut outcomes).await {
            mesh.refresh_local("order").await;
            order = mesh.sidecars.get("order").cloned().unwrap_or_default();
        }
        progress.show(&outcomes);
    }
    // Slow payments, late goods and timers take a few seconds; then whatever has not ended
    // counts as failed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while outcomes.values().any(|o| o.end.is_none()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if !follow(mesh, &order, process, &mut outcomes).await {
            mesh.refresh_local("order").await;
            order = mesh.sidecars.get("order").cloned().unwrap_or_default();
        }
        progress.show(&outcomes);
    }
    progress.finish(&outcomes);
    let after = element_counts(mesh, &order, process).await;
    Ok(StageReport::new(
        stage,
        started.elapsed(),
        &outcomes,
        v2,
        weights_of,
        &before,
        &after,
    ))
}

/// Reads the state of every order instance of `process` that has not ended yet; `false` when
/// the order sidecar did not answer.
async fn follow(
    mesh: &Mesh,
    order: &str,
    process: &str,
    outcomes: &mut BTreeMap<u64, Outcome>,
) -> bool {
    let Some(list) = mesh::get(
        &mesh.http,
        &format!("{order}/v1/instances?process={process}&limit=1000&state=completed"),
    )
    .await
    else {
        return false;
    };
    let mut after = list["next"].as_str().map(str::to_owned);
    let mut items: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    while let Some(a) = after.take() {
        let Some(page) = mesh::get(
            &mesh.http,
            &format!("{order}/v1/instances?process={process}&limit=1000&state=completed&after={a}"),
        )
        .await
        else {
            break;
        };
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        after = page["next"].as_str().map(str::to_owned);
    }
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for item in &items {
        if let Some(n) = item["business_key"]
            .as_str()
            .and_then(flowmesh_example_order_fulfillment::app::number)
        {
            *seen.entry(n).or_default() += 1;
        }
    }
    for (n, count) in &seen {
        if let Some(o) = outcomes.get_mut(n)
            && o.end.is_some()
        {
            o.instances = *count;
        }
    }
    for item in items {
        let Some(n) = item["business_key"]
            .as_str()
            .and_then(flowmesh_example_order_fulfillment::app::number)
        else {
            continue;
        };
        let Some(o) = outcomes.get_mut(&n) else {
            continue;
        };
        if o.end.is_some() {
            continue;
        }
        let key = item["key"].as_str().unwrap_or_default();
        let Some(detail) = mesh::get(&mesh.http, &format!("{order}/v1/instances/{key}")).await
        else {
            continue;
        };
        *o = Outcome::of(&detail);
        o.instances = seen.get(&n).copied().unwrap_or(1);
    }
    true
}

/// Completed counts per element of `process` (all versions) in the order sidecar.
async fn element_counts(mesh: &Mesh, order: &str, process: &str) -> BTreeMap<(u32, String), u64> {
    let mut out = BTreeMap::new();
    if let Some(models) = mesh::get(&mesh.http, &format!("{order}/v1/models")).await {
        for m in models["models"].as_array().into_iter().flatten() {
            if m["process"] != process {
                continue;
            }
            let version = u32::try_from(m["version"].as_u64().unwrap_or(0)).unwrap_or(0);
            for (element, s) in m["elements"].as_object().into_iter().flatten() {
                out.insert(
                    (version, element.clone()),
                    s["completed"].as_u64().unwrap_or(0),
                );
            }
        }
    }
    out
}
