//! A control-plane node: options → [`ControlPlane::build`] → [`ControlPlane::run`] until
//! shutdown, with a cheap [`Handle`] for its address and Raft.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::{Config, SnapshotPolicy};
use tokio::net::TcpListener;

use crate::api::{self, App};
use crate::faults::Faults;
use crate::http::HttpClient;
use crate::monitor::{Monitor, MonitorOptions};
use crate::network::Network;
use crate::proposer::Proposer;
use crate::server;
use crate::state::Command;
use crate::storage;
use crate::types::{Node, NodeId, Raft};

/// How a node runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub id: NodeId,
    /// Where the HTTP API and Raft RPC listen (port 0: any free port).
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Every voter of the cluster by id, as `host:port` (this node included). Empty: a
    /// single-node cluster on `listen`.
    pub peers: BTreeMap<NodeId, String>,
    /// Bearer token for writes and Raft RPC; `None` leaves them open.
    pub token: Option<String>,
    /// Serve `PUT /v1/debug/cut` (tests simulate partitions with it).
    pub fault_injection: bool,
    /// Build a snapshot (and compact the log) after this many applied entries.
    pub snapshot_logs: u64,
    /// Raft heartbeat interval. A follower that stops hearing from its leader calls an election
    /// after 12–16 of them: openraft's leader lease (8) plus a random 4–8.
    pub heartbeat: Duration,
    /// Start without initializing a cluster: wait to be added to an existing one
    /// (`POST /v1/cluster/members` on any member).
    pub join: bool,
    /// The monitor pages (`/ui/`) and their JSON (`/v1/monitor/...`).
    pub monitor: MonitorOptions,
    /// What a client connection may take: time to send its head, connections open at once,
    /// and how long a stop waits for requests under way.
    pub limits: server::Limits,
}

impl Options {
    pub fn new(id: NodeId, listen: SocketAddr, data_dir: PathBuf) -> Options {
        Options {
            id,
            listen,
            data_dir,
            peers: BTreeMap::new(),
            token: None,
            fault_injection: false,
            snapshot_logs: 10_000,
            heartbeat: Duration::from_millis(50),
            join: false,
            monitor: MonitorOptions::default(),
            limits: server::Limits::default(),
        }
    }

    /// Refuses what cannot work whatever the machine: a peer list without this node.
    pub fn check(&self) -> Result<(), Error> {
        if !self.peers.is_empty() && !self.peers.contains_key(&self.id) {
            return Err(Error::Options(format!(
                "--peers lists nodes {:?} but not this node's id {}; list every voter, this one included",
                self.peers.keys().collect::<Vec<_>>(),
                self.id
            )));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] storage::Error),
    #[error("invalid options: {0}")]
    Options(String),
    #[error("raft failed to start: {0}")]
    Raft(String),
}

/// A node that has opened its storage and bound its listener, ready to run.
pub struct ControlPlane {
    listener: TcpListener,
    limits: server::Limits,
    app: Arc<App>,
    monitor: Arc<Monitor>,
    stopping: tokio::sync::watch::Sender<bool>,
}

/// A cheap handle to a running (or built) node.
#[derive(Clone)]
pub struct Handle {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub raft: Raft,
}

impl ControlPlane {
    pub async fn build(options: Options) -> Result<ControlPlane, Error> {
        options.check()?;
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: options.listen,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| Error::Listen {
            addr: options.listen,
            source,
        })?;
        let (log, machine) = storage::open(&options.data_dir)?;
        let shared = machine.shared();
        let revisions = machine.revisions();
        let heartbeat = options.heartbeat.as_millis().max(10) as u64;
        let config = Config {
            cluster_name: "flowmesh".to_owned(),
            heartbeat_interval: heartbeat,
            election_timeout_min: heartbeat * 4,
            election_timeout_max: heartbeat * 8,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_logs.max(1)),
            max_in_snapshot_log_to_keep: options.snapshot_logs.clamp(1, 1000),
            install_snapshot_timeout: 5_000,
            max_payload_entries: 512,
            ..Config::default()
        }
        .validate()
        .map_err(|e| Error::Options(e.to_string()))?;
        let token: Option<Arc<str>> = options.token.as_deref().map(Arc::from);
        let faults = Faults::default();
        let client = HttpClient::new();
        let network = Network {
            client: client.clone(),
            token: token.clone(),
            me: options.id,
            faults: faults.clone(),
        };
        let raft = Raft::new(options.id, Arc::new(config), network, log, machine)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        let members: BTreeMap<NodeId, Node> = if options.peers.is_empty() {
            let advertise = if local.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], local.port())).to_string()
            } else {
                local.to_string()
            };
            [(options.id, Node { addr: advertise })].into()
        } else {
            options
                .peers
                .iter()
                .map(|(id, addr)| (*id, Node { addr: addr.clone() }))
                .collect()
        };
        // Every node initializes with the same voters; a node that has state already (a
        // restart) is refused, which is what should happen.
        if !options.join {
            match raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(Error::Raft(e.to_string())),
            }
        }
        let proposer = Proposer::start(raft.clone());
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let monitor = Arc::new(Monitor::new(
            shared.clone(),
            client.clone(),
            options.monitor.clone(),
        ));
        let app = Arc::new(App {
            id: options.id,
            raft,
            machine: shared,
            revisions,
            proposer,
            token,
            faults,
            fault_injection: options.fault_injection,
            client,
            stopping: stopping_rx,
        });
        Ok(ControlPlane {
            listener,
            limits: options.limits,
            app,
            monitor,
            stopping,
        })
    }

    pub fn handle(&self) -> Handle {
        Handle {
            id: self.app.id,
            addr: self
                .listener
                .local_addr()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
            raft: self.app.raft.clone(),
        }
    }

    /// Serves until `shutdown` resolves, then stops Raft.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let leases = tokio::spawn(expire_leases(self.app.clone()));
        let router =
            crate::monitor::router(self.monitor.clone()).merge(api::router(self.app.clone()));
        let stopping = self.stopping;
        let stop = async move {
            shutdown.await;
            let _ = stopping.send(true);
        };
        server::serve(self.listener, router, self.limits, stop).await;
        leases.abort();
        let _ = self.app.raft.shutdown().await;
        Ok(())
    }
}

/// On the leader: proposes dropping registrations whose lease ended.
async fn expire_leases(app: Arc<App>) {
    let mut tick = crate::timer::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if app.raft.metrics().borrow().current_leader != Some(app.id) {
            continue;
        }
        let now = jiff::Timestamp::now().as_millisecond();
        if app.machine.read().await.state.has_expired(now) {
            let _ = app
                .proposer
                .propose(Command::ExpireLeases { at_ms: now })
                .await;
        }
    }
}

/// Parses `1=host:port,2=host:port`.
pub fn parse_peers(text: &str) -> Result<BTreeMap<NodeId, String>, String> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part.split_once('=').ok_or_else(|| {
            format!("'{part}' is not ID=HOST:PORT (for example 1=127.0.0.1:7701)")
        })?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| format!("'{id}' in '{part}' is not a node id (a number)"))?;
        let addr = addr.trim();
        if addr
            .rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            return Err(format!("'{addr}' in '{part}' is not HOST:PORT"));
        }
        if out.insert(id, addr.to_owned()).is_some() {
            return Err(format!("node {id} is listed twice"));
        }
    }
    let ids: BTreeSet<&NodeId> = out.keys().collect();
    if ids.is_empty() {
        return Err("no peers given".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_refuse_clearly() {
        let p = parse_peers("1=127.0.0.1:7701, 2=127.0.0.1:7702").unwrap();
        assert_eq!(p[&2], "127.0.0.1:7702");
        assert!(
            parse_peers("1:127.0.0.1:7701")
                .unwrap_err()
                .contains("not ID=HOST:PORT")
        );
        assert!(
            parse_peers("x=127.0.0.1:1")
                .unwrap_err()
                .contains("not a node id")
        );
        assert!(
            parse_peers("1=localhost")
                .unwrap_err()
                .contains("not HOST:PORT")
        );
        assert!(parse_peers("1=a:1,1=b:2").unwrap_err().contains("twice"));
    }
}
