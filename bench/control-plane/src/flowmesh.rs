//! Three `flowmesh control-plane` processes on loopback, each with its own data dir; writes are
//! service registrations (`PUT /v1/services/bench/instances/{id}`, ~1 KiB) sent to the leader.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowmesh_control_plane::client::Client;
use hyper::Method;

use crate::load::{MakeWrite, Write};
use crate::procs::{Children, free_port};

const TOKEN: &str = "bench-token";

pub(crate) struct Cluster {
    _children: Children,
    pub(crate) leader_url: String,
}

pub(crate) async fn start(dir: &Path) -> Result<Cluster, String> {
    let bin = crate::procs::flowmesh_binary("bench-control-plane")?;
    std::fs::write(dir.join("token"), TOKEN).map_err(|e| e.to_string())?;
    let addrs: Vec<String> = (0..3)
        .map(|_| free_port().map(|p| format!("127.0.0.1:{p}")))
        .collect::<Result<_, _>>()?;
    let peers: Vec<String> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect();
    let mut children = Children::default();
    for (i, addr) in addrs.iter().enumerate() {
        let id = i + 1;
        crate::procs::spawn(
            &bin,
            &[
                "control-plane",
                "--id",
                &id.to_string(),
                "--listen",
                addr,
                "--data-dir",
                &dir.join(format!("flowmesh-{id}")).display().to_string(),
                "--token-file",
                &dir.join("token").display().to_string(),
                "--peers",
                &peers.join(","),
            ],
            &dir.join(format!("flowmesh-{id}.log")),
            &mut children,
        )?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for addr in &addrs {
            let client = Client::new(&format!("http://{addr}"), None)
                .with_timeout(Duration::from_millis(500));
            if let Ok(view) = client.cluster().await
                && let Some(leader) = view.leader
                && let Some(member) = view.members.iter().find(|m| m.id == leader)
            {
                return Ok(Cluster {
                    _children: children,
                    leader_url: format!("http://{}", member.addr),
                });
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the flowmesh cluster elected no leader within 20 s; see {}/flowmesh-*.log",
                dir.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Worker `w`'s `n`th write registers instance `w{w}-{n}` of service `bench`.
pub(crate) fn writes(leader_url: &str) -> MakeWrite {
    let body = Bytes::from(crate::value::registration());
    let base = format!("{leader_url}/v1/services/bench/instances");
    Arc::new(move |w, n| Write {
        method: Method::PUT,
        url: format!("{base}/w{w}-{n}"),
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("authorization", format!("Bearer {TOKEN}")),
        ],
        body: body.clone(),
    })
}
