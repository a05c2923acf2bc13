//! Subcommands that talk to a sidecar's local API: `instances`, `instance`, `publish`,
//! `incidents`, `resolve`.

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use flowmesh_control_plane::http::HttpClient;
use hyper::Method;
use serde_json::{Value, json};

use crate::remote::{Output, block_on, fail};
use crate::table;

/// Which sidecar to ask.
#[derive(clap::Args)]
pub(crate) struct Target {
    /// The sidecar's local API; default: $FLOWMESH_SIDECAR or http://127.0.0.1:15000.
    #[arg(long)]
    sidecar: Option<String>,
}

impl Target {
    /// Sends a request and returns the JSON answer; a refusal becomes its detail.
    fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let base = self
            .sidecar
            .clone()
            .or_else(|| std::env::var("FLOWMESH_SIDECAR").ok())
            .unwrap_or_else(|| "http://127.0.0.1:15000".to_owned());
        if !base.starts_with("http://") {
            return Err(format!("sidecar URL '{base}' must start with http://"));
        }
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let reply = block_on(HttpClient::new().send(
            method,
            &url,
            &[("content-type", "application/json")],
            bytes,
            Duration::from_secs(15),
        ))?
        .map_err(|e| format!("cannot reach the sidecar: {e}"))?;
        let value: Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&reply.body).into_owned()));
        if reply.status.is_success() {
            return Ok(value);
        }
        Err(match (value["error"].as_str(), value["detail"].as_str()) {
            (Some(code), Some(detail)) => format!("{detail} ({code}, HTTP {})", reply.status),
            _ => format!("the sidecar answered {}: {value}", reply.status),
        })
    }
}

fn print(output: Output, json: &Value, text: String) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(json).unwrap_or_default()),
        Output::Table => print!("{text}"),
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// List the process instances a sidecar runs.
#[derive(clap::Args)]
pub(crate) struct InstancesArgs {
    #[arg(long)]
    process: Option<String>,
    /// active, completed, incident or cancelled.
    #[arg(long)]
    state: Option<String>,
    #[arg(long)]
    business_key: Option<String>,
    /// At most this many (1 to 1000).
    #[arg(long, default_value = "100")]
    limit: usize,
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn instances(args: InstancesArgs) -> ExitCode {
    let mut query = vec![format!("limit={}", args.limit)];
    for (name, value) in [
        ("process", &args.process),
        ("state", &args.state),
        ("business_key", &args.business_key),
    ] {
        if let Some(v) = value {
            query.push(format!("{name}={}", encode(v)));
        }
    }
    let path = format!("/v1/instances?{}", query.join("&"));
    match args.target.call(Method::GET, &path, None) {
        Ok(answer) => {
            let rows: Vec<Vec<String>> = answer["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|i| {
                            [
                                "key",
                                "process",
                                "version",
                                "state",
                                "business_key",
                                "started_at",
                                "ended_at",
                            ]
                            .iter()
                            .map(|k| cell(&i[*k]))
                            .collect()
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut text = table::render(
                &[
                    "KEY",
                    "PROCESS",
                    "VERSION",
                    "STATE",
                    "BUSINESS KEY",
                    "STARTED",
                    "ENDED",
                ],
                &rows,
            );
            if let Some(next) = answer["next"].as_str() {
                text.push_str(&format!("more after {next}\n"));
            }
            print(args.output, &answer, text);
            ExitCode::SUCCESS
        }
        Err(e) => fail("instances", e),
    }
}

/// Show one process instance: state, active elements, incidents, variables, history.
#[derive(clap::Args)]
pub(crate) struct InstanceArgs {
    key: String,
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn instance(args: InstanceArgs) -> ExitCode {
    let path = format!("/v1/instances/{}", encode(&args.key));
    match args.target.call(Method::GET, &path, None) {
        Ok(i) => {
            let mut text = String::new();
            for (label, key) in [
                ("key", "key"),
                ("process", "process"),
                ("version", "version"),
                ("state", "state"),
                ("business key", "business_key"),
                ("started", "started_at"),
                ("ended", "ended_at"),
                ("trace", "trace_id"),
            ] {
                text.push_str(&format!("{label:<13}{}\n", cell(&i[key])));
            }
            // Element ids with their element instance keys (what `flowmesh modify` terminates).
            let active: Vec<String> = i["active"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| format!("{} ({})", cell(&e["element"]), cell(&e["key"])))
                        .collect()
                })
                .unwrap_or_default();
            text.push_str(&format!("{:<13}{}\n", "active", active.join(", ")));
            for inc in i["incidents"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "incident     {} at {} ({}): {}\n",
                    cell(&inc["id"]),
                    cell(&inc["element"]),
                    cell(&inc["kind"]),
                    cell(&inc["message"])
                ));
            }
            text.push_str(&format!(
                "variables    {}\n\n",
                serde_json::to_string(&i["variables"]).unwrap_or_default()
            ));
            let rows: Vec<Vec<String>> = i["history"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    ["at", "element", "type", "event"]
                        .iter()
                        .map(|k| cell(&h[*k]))
                        .collect()
                })
                .collect();
            text.push_str(&table::render(&["AT", "ELEMENT", "TYPE", "EVENT"], &rows));
            print(args.output, &i, text);
            ExitCode::SUCCESS
        }
        Err(e) => fail("instance", e),
    }
}

/// Publish a message to the processes waiting for it (wherever in the mesh they run).
#[derive(clap::Args)]
pub(crate) struct PublishArgs {
    /// The message name.
    name: String,
    /// The correlation key.
    #[arg(long)]
    key: String,
    /// A variable: NAME=VALUE, VALUE read as JSON when it is JSON, else as text.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// How long the message waits for a subscription (ISO 8601 or like 30s); default 1 hour.
    #[arg(long)]
    ttl: Option<String>,
    /// The message id (a second message with this id within the TTL is refused).
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// `NAME=VALUE` arguments as a JSON object: VALUE as JSON when it is JSON, else as text.
fn variables(command: &str, vars: &[String]) -> Result<serde_json::Map<String, Value>, ExitCode> {
    let mut out = serde_json::Map::new();
    for v in vars {
        let Some((name, value)) = v.split_once('=') else {
            eprintln!("flowmesh {command}: '{v}' is not NAME=VALUE (for example amount=42)");
            return Err(ExitCode::from(2));
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        out.insert(name.trim().to_owned(), value);
    }
    Ok(out)
}

pub(crate) fn publish(args: PublishArgs) -> ExitCode {
    let variables = match variables("publish", &args.vars) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let mut body = json!({"name": args.name, "correlation_key": args.key, "variables": variables});
    if let Some(ttl) = &args.ttl {
        body["ttl"] = json!(ttl);
    }
    if let Some(id) = &args.id {
        body["id"] = json!(id);
    }
    match args.target.call(Method::POST, "/v1/messages", Some(body)) {
        Ok(answer) => {
            println!("published {} (id {})", args.name, cell(&answer["id"]));
            ExitCode::SUCCESS
        }
        Err(e) => fail("publish", e),
    }
}

/// Broadcast a signal to every process in the mesh that waits for it.
#[derive(clap::Args)]
pub(crate) struct SignalArgs {
    /// The signal name.
    name: String,
    /// A variable: NAME=VALUE, VALUE read as JSON when it is JSON, else as text.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn signal(args: SignalArgs) -> ExitCode {
    let variables = match variables("signal", &args.vars) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let body = json!({"name": args.name, "variables": variables});
    match args.target.call(Method::POST, "/v1/signals", Some(body)) {
        Ok(answer) => {
            println!("broadcast {} (id {})", args.name, cell(&answer["id"]));
            ExitCode::SUCCESS
        }
        Err(e) => fail("signal", e),
    }
}

/// List open incidents.
#[derive(clap::Args)]
pub(crate) struct IncidentsArgs {
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn incidents(args: IncidentsArgs) -> ExitCode {
    match args.target.call(Method::GET, "/v1/incidents", None) {
        Ok(answer) => {
            let rows: Vec<Vec<String>> = answer["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    ["id", "instance", "process", "element", "kind", "message"]
                        .iter()
                        .map(|k| cell(&i[*k]))
                        .collect()
                })
                .collect();
            let text = table::render(
                &["ID", "INSTANCE", "PROCESS", "ELEMENT", "KIND", "MESSAGE"],
                &rows,
            );
            print(args.output, &answer, text);
            ExitCode::SUCCESS
        }
        Err(e) => fail("incidents", e),
    }
}

/// The instances this sidecar's outbound proxy chooses from, and the load it sees at each: its
/// requests in flight, its answer time estimate, and how much longer it is passed over.
#[derive(clap::Args)]
pub(crate) struct RegistryArgs {
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn registry(args: RegistryArgs) -> ExitCode {
    match args.target.call(Method::GET, "/v1/registry", None) {
        Ok(answer) => {
            let rows: Vec<Vec<String>> = answer["services"]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(service, listed)| {
                    listed.as_array().into_iter().flatten().map(move |i| {
                        let passed_over = match i["passed_over_ms"].as_u64() {
                            Some(ms) if ms > 0 => format!("{:.1} s", ms as f64 / 1000.0),
                            _ => "-".to_owned(),
                        };
                        vec![
                            service.clone(),
                            cell(&i["id"]),
                            cell(&i["mesh"]),
                            cell(&i["in_flight"]),
                            format!("{:.1}", i["answer_ms"].as_f64().unwrap_or(0.0)),
                            passed_over,
                        ]
                    })
                })
                .collect();
            let text = table::render(
                &[
                    "SERVICE",
                    "INSTANCE",
                    "MESH",
                    "IN FLIGHT",
                    "ANSWER MS",
                    "PASSED OVER",
                ],
                &rows,
            );
            print(args.output, &answer, text);
            ExitCode::SUCCESS
        }
        Err(e) => fail("registry", e),
    }
}

/// Resolve an incident: the failed job or step runs again.
#[derive(clap::Args)]
pub(crate) struct ResolveArgs {
    id: String,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn resolve(args: ResolveArgs) -> ExitCode {
    let path = format!("/v1/incidents/{}/resolve", encode(&args.id));
    match args.target.call(Method::POST, &path, None) {
        Ok(_) => {
            println!("resolved incident {}", args.id);
            ExitCode::SUCCESS
        }
        Err(e) => fail("resolve", e),
    }
}

/// Repair a running instance: activate elements (by id) as if a flow reached them, then
/// terminate element instances (by key, from `flowmesh instance KEY`); all or nothing. A scope
/// left with nothing active ends.
#[derive(clap::Args)]
pub(crate) struct ModifyArgs {
    /// The process instance key.
    key: String,
    /// An element id to activate (repeatable).
    #[arg(long, value_name = "ELEMENT")]
    activate: Vec<String>,
    /// An element instance key to terminate (repeatable).
    #[arg(long, value_name = "KEY")]
    terminate: Vec<String>,
    /// Variables to set on the process scope first, as a JSON object.
    #[arg(long, value_name = "JSON")]
    variables: Option<String>,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn modify(args: ModifyArgs) -> ExitCode {
    if args.activate.is_empty() && args.terminate.is_empty() {
        eprintln!("flowmesh modify: give --activate ELEMENT and/or --terminate KEY");
        return ExitCode::from(2);
    }
    let variables = match args
        .variables
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        None => serde_json::Value::Null,
        Some(Ok(v @ serde_json::Value::Object(_))) => v,
        Some(_) => {
            eprintln!(
                "flowmesh modify: --variables must be a JSON object, e.g. '{{\"paid\": true}}'"
            );
            return ExitCode::from(2);
        }
    };
    let body = serde_json::json!({
        "activate": args.activate,
        "terminate": args.terminate,
        "variables": variables,
    });
    let path = format!("/v1/instances/{}/modification", encode(&args.key));
    match args.target.call(Method::POST, &path, Some(body)) {
        Ok(_) => {
            println!(
                "modified instance {}: activated [{}], terminated [{}]",
                args.key,
                args.activate.join(", "),
                args.terminate.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail("modify", e),
    }
}

/// Move a running instance to another version of its process: every active element mapped
/// (`--map OLD_ID=NEW_ID`) to an element of the same type in the same scope. Refused, with
/// the reason, when it cannot be done safely.
#[derive(clap::Args)]
pub(crate) struct MigrateArgs {
    /// The process instance key.
    key: String,
    /// The version to move to.
    #[arg(long)]
    version: u32,
    /// Active element id in the running version = element id in the new one (repeatable).
    #[arg(long = "map", value_name = "OLD=NEW")]
    mappings: Vec<String>,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn migrate(args: MigrateArgs) -> ExitCode {
    let mut mappings = serde_json::Map::new();
    for m in &args.mappings {
        let Some((from, to)) = m
            .split_once('=')
            .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        else {
            eprintln!("flowmesh migrate: --map takes OLD_ID=NEW_ID, not '{m}'");
            return ExitCode::from(2);
        };
        mappings.insert(from.to_owned(), serde_json::Value::from(to));
    }
    let body = serde_json::json!({"version": args.version, "mappings": mappings});
    let path = format!("/v1/instances/{}/migration", encode(&args.key));
    match args.target.call(Method::POST, &path, Some(body)) {
        Ok(_) => {
            println!("migrated instance {} to version {}", args.key, args.version);
            ExitCode::SUCCESS
        }
        Err(e) => fail("migrate", e),
    }
}
