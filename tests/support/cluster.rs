//! A control-plane cluster of real `flowmesh control-plane` processes on 127.0.0.1, each with
//! its own data dir, that tests can kill -9, restart, partition and talk to.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowmesh_control_plane::client::{Client, Error};
use hyper::Method;

pub(crate) const TOKEN: &str = "test-token-7f3a";

pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    pub(crate) addrs: BTreeMap<u64, String>,
    children: BTreeMap<u64, Child>,
    extra: Vec<String>,
}

/// A free port on 127.0.0.1 (bound and released; peers must be known before nodes start).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Cluster {
    /// Starts `n` nodes that form one cluster. `extra` arguments go to every node.
    pub(crate) fn start(n: u64, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("token"), TOKEN).expect("token file");
        let addrs: BTreeMap<u64, String> = (1..=n)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect();
        let mut cluster = Cluster {
            dir,
            addrs,
            children: BTreeMap::new(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        for id in 1..=n {
            cluster.spawn(id, false);
        }
        cluster
    }

    /// Starts `n` nodes and waits until each answers and a leader is elected.
    pub(crate) async fn up(n: u64, extra: &[&str], within: Duration) -> Cluster {
        let cluster = Cluster::start(n, extra);
        for id in 1..=n {
            cluster.ready(id, within).await;
        }
        cluster.leader(within).await;
        cluster
    }

    /// A client of every node, each request bounded by `timeout`.
    pub(crate) fn clients(&self, timeout: Duration) -> Vec<Client> {
        self.addrs
            .keys()
            .map(|id| self.client(*id).with_timeout(timeout))
            .collect()
    }

    fn peers(&self) -> String {
        self.addrs
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn log_file(&self, id: u64) -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{id}.log")))
            .map_or_else(|_| Stdio::null(), Stdio::from)
    }

    /// The last lines each node logged, for a failing test's message.
    pub(crate) fn logs(&self) -> String {
        let mut out = String::new();
        for id in self.addrs.keys() {
            let text = std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "--- node {id} ---\n{}\n",
                lines[lines.len().saturating_sub(60)..].join("\n")
            ));
        }
        out
    }

    pub(crate) fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    fn spawn(&mut self, id: u64, join: bool) {
        let addr = self.addrs[&id].clone();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowmesh"));
        cmd.args(["control-plane", "--id", &id.to_string(), "--listen", &addr])
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .arg("--token-file")
            .arg(self.dir.path().join("token"))
            .args(&self.extra)
            .env(
                "FLOWMESH_LOG",
                std::env::var("TEST_NODE_LOG").unwrap_or_else(|_| "info,openraft=warn".to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(self.log_file(id));
        if join {
            cmd.arg("--join");
        } else if self.addrs.len() > 1 {
            cmd.args(["--peers", &self.peers()]);
        }
        let child = cmd.spawn().expect("flowmesh control-plane starts");
        self.children.insert(id, child);
    }

    /// Starts a new node that waits to be added (`--join`).
    pub(crate) fn spawn_joiner(&mut self, id: u64) -> String {
        let addr = format!("127.0.0.1:{}", free_port());
        self.addrs.insert(id, addr.clone());
        self.spawn(id, true);
        addr
    }

    /// SIGKILL: no shutdown, no flush.
    pub(crate) fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn restart(&mut self, id: u64) {
        self.kill(id);
        self.spawn(id, false);
    }

    pub(crate) fn running(&self) -> Vec<u64> {
        self.children.keys().copied().collect()
    }

    pub(crate) fn client(&self, id: u64) -> Client {
        Client::new(
            &format!("http://{}", self.addrs[&id]),
            Some(TOKEN.to_owned()),
        )
        .with_timeout(Duration::from_secs(5))
    }

    /// The leader as a running node sees it, once one is elected and known.
    pub(crate) async fn leader(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            for id in self.running() {
                if let Ok(c) = self.client(id).cluster().await
                    && let Some(leader) = c.leader
                    && self.children.contains_key(&leader)
                {
                    return leader;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader among {:?} within {within:?}",
                self.running()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a node answers its cluster endpoint.
    pub(crate) async fn ready(&self, id: u64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.client(id).cluster().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "node {id} did not come up within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `id` has applied everything the leader had applied when the wait began,
    /// so that the next fault does not start from a node that is still catching up.
    pub(crate) async fn caught_up(&self, id: u64, within: Duration) {
        let deadline = Instant::now() + within;
        let leader = self.leader(within).await;
        let target = self
            .client(leader)
            .cluster()
            .await
            .map(|c| c.last_applied)
            .unwrap_or(0);
        loop {
            if self
                .client(id)
                .cluster()
                .await
                .is_ok_and(|c| c.last_applied >= target)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not reach index {target} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Cuts node `id` off from `peers` (both directions need both sides' cuts).
    pub(crate) async fn cut(&self, id: u64, peers: &[u64]) {
        let body = serde_json::json!({ "peers": peers });
        self.client(id)
            .send_raw(
                Method::PUT,
                "/v1/debug/cut",
                "application/json",
                Bytes::from(body.to_string()),
            )
            .await
            .expect("cut accepted");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A small valid model whose process id (and so content) is unique per `n`.
pub(crate) fn model(n: u64) -> Bytes {
    Bytes::from(format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d{n}" targetNamespace="t">
  <process id="p{n:05}" isExecutable="true">
    <startEvent id="s"/>
    <serviceTask id="t"><extensionElements><zeebe:taskDefinition type="work"/></extensionElements></serviceTask>
    <endEvent id="e"/>
    <sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <sequenceFlow id="f2" sourceRef="t" targetRef="e"/>
  </process>
</definitions>"#
    ))
}

/// Deploys model `n` through any running node, retrying until `within` passes. Returns whether
/// it was acknowledged.
pub(crate) async fn deploy_anywhere(
    cluster_nodes: &[Client],
    n: u64,
    within: Duration,
) -> Result<(), Error> {
    let deadline = Instant::now() + within;
    let mut last = None;
    loop {
        for c in cluster_nodes {
            match c.deploy(model(n), Some("svc")).await {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        if Instant::now() >= deadline {
            return Err(last.expect("at least one attempt"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The deployed processes in the order their deployments were applied, as node `c` sees them
/// (with a linearizable read).
pub(crate) async fn deployed_in_order(c: &Client) -> Vec<(u64, String, u32)> {
    let models = c.models(true).await.expect("models readable");
    let mut list: Vec<(u64, String, u32)> = models
        .models
        .into_iter()
        .map(|m| (m.revision, m.process, m.version))
        .collect();
    list.sort();
    list
}

/// Deployments `p00000`, `p00001`, ... sent one after another through any of `clients` until
/// stopped; remembers which were acknowledged and when each was sent.
pub(crate) struct DeployStream {
    acked: std::sync::Arc<tokio::sync::Mutex<Vec<(u64, Instant)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl DeployStream {
    pub(crate) fn start(clients: Vec<Client>) -> DeployStream {
        let acked = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = {
            let (acked, stop) = (acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Stamped with when the write was sent: an acknowledgement that was already
                    // on its way when a leader died does not show that a new one serves writes.
                    let sent = Instant::now();
                    if deploy_anywhere(&clients, n, Duration::from_secs(30))
                        .await
                        .is_ok()
                    {
                        acked.lock().await.push((n, sent));
                    }
                    n += 1;
                }
            })
        };
        DeployStream { acked, stop, task }
    }

    /// How many were acknowledged so far.
    pub(crate) async fn count(&self) -> usize {
        self.acked.lock().await.len()
    }

    /// Whether a deployment sent after `t` was acknowledged.
    pub(crate) async fn acknowledged_since(&self, t: Instant) -> bool {
        self.acked
            .lock()
            .await
            .last()
            .is_some_and(|(_, sent)| *sent > t)
    }

    /// Stops after the deployment in flight; the acknowledged process ids.
    pub(crate) async fn stop(self) -> std::collections::BTreeSet<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.task.await;
        self.acked
            .lock()
            .await
            .iter()
            .map(|(n, _)| format!("p{n:05}"))
            .collect()
    }
}
