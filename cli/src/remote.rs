//! Subcommands that talk to the control plane: `deploy`, `get`, `rollout`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use flowmesh_control_plane::client::Client;
use flowmesh_proto::control::RolloutRequest;

use crate::table;

/// Where the control plane is and how to authenticate.
#[derive(clap::Args)]
pub(crate) struct Target {
    /// The control plane's URL; default: $FLOWMESH_CONTROL_PLANE or http://127.0.0.1:7700.
    #[arg(long)]
    control_plane: Option<String>,
    /// File holding the bearer token for writes; default: $FLOWMESH_TOKEN.
    #[arg(long)]
    token_file: Option<PathBuf>,
}

impl Target {
    fn client(&self) -> Result<Client, String> {
        let url = self
            .control_plane
            .clone()
            .or_else(|| std::env::var("FLOWMESH_CONTROL_PLANE").ok())
            .unwrap_or_else(|| "http://127.0.0.1:7700".to_owned());
        if !url.starts_with("http://") {
            return Err(format!("control plane URL '{url}' must start with http://"));
        }
        let token = crate::control_plane::token(self.token_file.as_ref())?;
        Ok(Client::new(&url, token))
    }
}

pub(crate) fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .map(|rt| rt.block_on(f))
}

pub(crate) fn fail(command: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("flowmesh {command}: {e}");
    ExitCode::from(1)
}

/// Deploy BPMN files to the control plane: each executable process becomes a new version
/// (an unchanged file keeps its version).
#[derive(clap::Args)]
pub(crate) struct DeployArgs {
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The service that owns (runs) the processes; default: each process's id.
    #[arg(long)]
    owner: Option<String>,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn deploy(args: DeployArgs) -> ExitCode {
    let client = match args.target.client() {
        Ok(c) => c,
        Err(e) => return fail("deploy", e),
    };
    let mut failed = false;
    for file in &args.files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("flowmesh deploy: {}: cannot read: {e}", file.display());
                failed = true;
                continue;
            }
        };
        match block_on(client.deploy(Bytes::from(bytes), args.owner.as_deref())) {
            Ok(Ok(answer)) => {
                for m in answer.models {
                    let what = if m.unchanged { "unchanged" } else { "deployed" };
                    println!(
                        "{}: {} {what}: version {} (owner {})",
                        file.display(),
                        m.process,
                        m.version,
                        m.owner
                    );
                }
            }
            Ok(Err(e)) => {
                // Model problems come one per line; prefix each with the file.
                for line in e.to_string().lines() {
                    eprintln!("flowmesh deploy: {}: {line}", file.display());
                }
                failed = true;
            }
            Err(e) => return fail("deploy", e),
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum What {
    Models,
    Services,
    Cluster,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Output {
    Table,
    Json,
}

/// Show deployed models, registered services or the cluster.
#[derive(clap::Args)]
pub(crate) struct GetArgs {
    what: What,
    /// Output format: an aligned table, or the API's JSON.
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn get(args: GetArgs) -> ExitCode {
    let client = match args.target.client() {
        Ok(c) => c,
        Err(e) => return fail("get", e),
    };
    let result = block_on(async {
        Ok::<(serde_json::Value, String), flowmesh_control_plane::client::Error>(match args.what {
            What::Models => {
                let r = client.models(false).await?;
                let rows = r
                    .models
                    .iter()
                    .map(|m| {
                        let weight = r
                            .rollouts
                            .get(&m.process)
                            .and_then(|w| w.get(&m.version.to_string()))
                            .map_or_else(|| "-".to_owned(), |w| format!("{w}%"));
                        vec![
                            m.process.clone(),
                            m.version.to_string(),
                            m.owner.clone(),
                            weight,
                            m.deployed_at.clone(),
                            m.sha256[..12.min(m.sha256.len())].to_owned(),
                        ]
                    })
                    .collect::<Vec<_>>();
                let text = table::render(
                    &[
                        "PROCESS", "VERSION", "OWNER", "ROLLOUT", "DEPLOYED", "SHA256",
                    ],
                    &rows,
                );
                (serde_json::to_value(&r).unwrap_or_default(), text)
            }
            What::Services => {
                let r = client.services(false).await?;
                let rows = r
                    .services
                    .iter()
                    .flat_map(|s| {
                        s.instances.iter().map(|i| {
                            let addrs: Vec<String> = i
                                .addresses
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect();
                            vec![
                                s.name.clone(),
                                i.id.clone(),
                                addrs.join(","),
                                i.expires_at.clone(),
                            ]
                        })
                    })
                    .collect::<Vec<_>>();
                let text =
                    table::render(&["SERVICE", "INSTANCE", "ADDRESSES", "LEASE UNTIL"], &rows);
                (serde_json::to_value(&r).unwrap_or_default(), text)
            }
            What::Cluster => {
                let r = client.cluster().await?;
                let rows = r
                    .members
                    .iter()
                    .map(|m| {
                        let role = if Some(m.id) == r.leader {
                            "leader"
                        } else if m.voter {
                            "voter"
                        } else {
                            "learner"
                        };
                        vec![m.id.to_string(), m.addr.clone(), role.to_owned()]
                    })
                    .collect::<Vec<_>>();
                let mut text = table::render(&["ID", "ADDRESS", "ROLE"], &rows);
                text.push_str(&format!(
                    "term {}, last applied {}\n",
                    r.term, r.last_applied
                ));
                (serde_json::to_value(&r).unwrap_or_default(), text)
            }
        })
    });
    match result {
        Ok(Ok((json, text))) => {
            match args.output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                ),
                Output::Table => print!("{text}"),
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => fail("get", e),
        Err(e) => fail("get", e),
    }
}

/// Split new instances of a process between versions: VERSION=WEIGHT..., weights adding up to 100.
#[derive(clap::Args)]
pub(crate) struct RolloutArgs {
    process: String,
    #[arg(required = true, value_name = "VERSION=WEIGHT")]
    weights: Vec<String>,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn rollout(args: RolloutArgs) -> ExitCode {
    let mut weights = BTreeMap::new();
    for w in &args.weights {
        let Some((version, weight)) = w.split_once('=') else {
            eprintln!("flowmesh rollout: '{w}' is not VERSION=WEIGHT (for example 2=10)");
            return ExitCode::from(2);
        };
        let Ok(weight) = weight.trim().parse::<u32>() else {
            eprintln!("flowmesh rollout: weight '{weight}' in '{w}' is not a whole number");
            return ExitCode::from(2);
        };
        weights.insert(version.trim().to_owned(), weight);
    }
    let client = match args.target.client() {
        Ok(c) => c,
        Err(e) => return fail("rollout", e),
    };
    match block_on(client.rollout(&args.process, &RolloutRequest { weights })) {
        Ok(Ok(answer)) => {
            println!("{}: {}", args.process, answer["weights"]);
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => fail("rollout", e),
        Err(e) => fail("rollout", e),
    }
}
