//! Three etcd members (Debian's etcd-server) on loopback, each with its own data dir; writes go
//! to the leader through etcd's JSON gateway, `POST /v3/kv/put`, with the same ~1 KiB value.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use flowmesh_control_plane::http::HttpClient;
use hyper::Method;

use crate::load::{MakeWrite, Write};
use crate::procs::{Children, free_port};

pub(crate) struct Cluster {
    _children: Children,
    pub(crate) leader_url: String,
    pub(crate) version: String,
}

/// Installs etcd-server with apt-get when `etcd` is not on the PATH.
fn ensure_installed() -> Result<String, String> {
    let version = || {
        Command::new("etcd")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find_map(|l| l.strip_prefix("etcd Version: ").map(str::to_owned))
            })
    };
    if let Some(v) = version() {
        return Ok(v);
    }
    eprintln!("etcd is not installed; installing Debian's etcd-server");
    let sudo = if Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
    {
        vec![]
    } else {
        vec!["sudo"]
    };
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{0} apt-get update -qq && DEBIAN_FRONTEND=noninteractive {0} apt-get install -y -qq etcd-server",
            sudo.join(" ")
        ))
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !status.success() {
        return Err("apt-get install etcd-server failed; install etcd 3.4+ and retry".to_owned());
    }
    version().ok_or_else(|| "etcd still not runnable after installing etcd-server".to_owned())
}

pub(crate) async fn start(dir: &Path) -> Result<Cluster, String> {
    let version = ensure_installed()?;
    let mut members = Vec::new();
    for i in 1..=3 {
        members.push((format!("m{i}"), free_port()?, free_port()?));
    }
    let initial: Vec<String> = members
        .iter()
        .map(|(name, _, peer)| format!("{name}=http://127.0.0.1:{peer}"))
        .collect();
    let mut children = Children::default();
    for (name, client, peer) in &members {
        let log = std::fs::File::create(dir.join(format!("etcd-{name}.log")))
            .map_err(|e| e.to_string())?;
        let child = Command::new("etcd")
            .args(["--name", name])
            .arg("--data-dir")
            .arg(dir.join(format!("etcd-{name}")))
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{client}"),
            ])
            .args([
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{client}"),
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "flowmesh-bench"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start etcd: {e}"))?;
        children.0.push(child);
    }
    // The leader is the member whose own id is the leader id its status reports.
    let http = HttpClient::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (_, client, _) in &members {
            let url = format!("http://127.0.0.1:{client}");
            let status = http
                .send(
                    Method::POST,
                    &format!("{url}/v3/maintenance/status"),
                    &[("content-type", "application/json")],
                    Bytes::from("{}"),
                    Duration::from_millis(500),
                )
                .await;
            if let Ok(reply) = status
                && reply.status.is_success()
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&reply.body)
                && v["leader"].as_str().is_some()
                && v["leader"] == v["header"]["member_id"]
            {
                return Ok(Cluster {
                    _children: children,
                    leader_url: url,
                    version,
                });
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "etcd elected no leader within 30 s; see {}/etcd-*.log",
                dir.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Worker `w`'s `n`th write puts key `bench/w{w}/{n}`.
pub(crate) fn writes(leader_url: &str) -> MakeWrite {
    let value = BASE64.encode(crate::value::registration());
    let url = format!("{leader_url}/v3/kv/put");
    Arc::new(move |w, n| {
        let key = BASE64.encode(format!("bench/w{w}/{n}"));
        Write {
            method: Method::POST,
            url: url.clone(),
            headers: vec![("content-type", "application/json".to_owned())],
            body: Bytes::from(format!(r#"{{"key":"{key}","value":"{value}"}}"#)),
        }
    })
}
