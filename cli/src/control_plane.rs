//! `flowmesh control-plane`: runs one node of the control plane until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use flowmesh_control_plane::server::Limits;
use flowmesh_control_plane::{ControlPlane, Options, node};

use crate::service;

/// Run a control-plane node. Without --peers it is a single-node cluster that initializes
/// itself; with --peers (the same list on every node) the cluster forms once a majority is up.
/// Restarting a node with the same data dir rejoins.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// This node's id, a number unique in the cluster.
    #[arg(long)]
    id: u64,
    /// Where the HTTP API and Raft RPC listen, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    /// Where the node keeps its Raft log and state (one redb file).
    #[arg(long)]
    data_dir: PathBuf,
    /// Every voter as ID=HOST:PORT, comma-separated, this node included.
    #[arg(long, value_parser = node::parse_peers)]
    peers: Option<std::collections::BTreeMap<u64, String>>,
    /// File holding the bearer token that writes (and peers) must present; default:
    /// $FLOWMESH_TOKEN. Without either, writes are open.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Build a snapshot and compact the log after this many applied entries.
    #[arg(long, default_value_t = 10_000)]
    snapshot_logs: u64,
    /// Raft heartbeat in milliseconds. A follower that stops hearing from its leader calls an
    /// election after 12 to 16 heartbeats (a leader lease of 8 plus a random 4 to 8).
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Start without forming a cluster and wait to be added to one (POST /v1/cluster/members
    /// on any member, with this node's id and address).
    #[arg(long, conflicts_with = "peers")]
    join: bool,
    /// Link the monitor's instance pages to their trace in your tracing UI: a URL with
    /// `{trace_id}` in it, e.g. http://jaeger:16686/trace/{trace_id}.
    #[arg(long, value_name = "URL")]
    trace_url: Option<String>,
    /// How long the monitor waits for a sidecar before it shows it as not answering.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    sidecar_timeout_ms: u64,
    /// Time a client connection has to send its first byte, and then the rest of a request
    /// head, before it is closed.
    #[arg(long, default_value_t = Limits::DEFAULT.header_read_timeout.as_millis() as u64, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout_ms: u64,
    /// Client connections open at once; further ones wait in the kernel's backlog.
    #[arg(long, default_value_t = Limits::DEFAULT.max_connections as u64, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// How long a stop waits for requests under way (long polls, monitor event streams).
    #[arg(long, default_value_t = Limits::DEFAULT.drain_timeout.as_millis() as u64, value_name = "MS")]
    drain_timeout_ms: u64,
    /// Check the flags and read the token file without starting anything: prints what the
    /// node would run as and exits 0, or says what is wrong and exits 2.
    #[arg(long)]
    check: bool,
    /// Serve PUT /v1/debug/cut to simulate partitions (tests only).
    #[arg(long, hide = true)]
    fault_injection: bool,
}

pub(crate) fn token(file: Option<&PathBuf>) -> Result<Option<String>, String> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --token-file {}: {e}", path.display()))?;
            let token = text.trim().to_owned();
            if token.is_empty() {
                return Err(format!("--token-file {} is empty", path.display()));
            }
            Ok(Some(token))
        }
        None => Ok(std::env::var("FLOWMESH_TOKEN")
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())),
    }
}

/// `--check`: the options as the node would run with them, or why it would not start.
fn check(options: &Options, token_from_file: bool) -> ExitCode {
    if let Err(e) = options.check() {
        eprintln!("flowmesh control-plane: {e}");
        return ExitCode::from(2);
    }
    let cluster = if options.join {
        "waits to join a cluster".to_owned()
    } else if options.peers.is_empty() {
        "a cluster of one".to_owned()
    } else {
        format!("one of {} voters", options.peers.len())
    };
    let token = match (&options.token, token_from_file) {
        (None, _) => "no token",
        (Some(_), true) => "token from --token-file",
        (Some(_), false) => "token from FLOWMESH_TOKEN",
    };
    println!(
        "ok (node {}, listen {}, {cluster}, data dir {}, {token})",
        options.id,
        options.listen,
        options.data_dir.display()
    );
    ExitCode::SUCCESS
}

pub(crate) fn run(args: Args) -> ExitCode {
    // openraft logs every unreachable peer at error level; that is expected while a node is
    // down, so only its failures of its own show by default.
    service::init_logging("info,openraft=off");
    let token = match token(args.token_file.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("flowmesh control-plane: {e}");
            return ExitCode::from(2);
        }
    };
    if token.is_none() {
        eprintln!(
            "flowmesh control-plane: warning: no token (--token-file or FLOWMESH_TOKEN): writes are open to anyone who can connect"
        );
    }
    let mut options = Options::new(args.id, args.listen, args.data_dir);
    options.peers = args.peers.unwrap_or_default();
    options.token = token;
    options.fault_injection = args.fault_injection;
    options.snapshot_logs = args.snapshot_logs;
    options.heartbeat = Duration::from_millis(args.heartbeat_ms);
    options.join = args.join;
    options.limits = Limits {
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        drain_timeout: Duration::from_millis(args.drain_timeout_ms),
    };
    if let Some(t) = &args.trace_url
        && !t.contains("{trace_id}")
    {
        eprintln!(
            "flowmesh control-plane: --trace-url must contain {{trace_id}} where the trace id goes (e.g. http://jaeger:16686/trace/{{trace_id}})"
        );
        return ExitCode::from(2);
    }
    options.monitor.trace_url = args.trace_url;
    options.monitor.sidecar_timeout = Duration::from_millis(args.sidecar_timeout_ms.max(1));
    if args.check {
        return check(&options, args.token_file.is_some());
    }
    service::block_on("control-plane", 0, service::Timers::Runtime, async move {
        let node = ControlPlane::build(options).await?;
        let handle = node.handle();
        eprintln!(
            "flowmesh control-plane: node {} listening on {}",
            handle.id, handle.addr
        );
        node.run(service::shutdown_signal()).await
    })
}
