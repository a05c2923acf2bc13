//! Starting `flowmesh proxy` with every listener on port 0: the addresses come from the line it
//! announces on stderr (`..., inbound ADDR → app ..., local API ADDR`), so no test races for a
//! port picked in advance.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A started sidecar: the process and where it listens.
pub(crate) struct Started {
    pub(crate) child: Child,
    pub(crate) inbound: SocketAddr,
    pub(crate) local: SocketAddr,
}

/// Runs `flowmesh proxy --config FILE` and waits for its announcement; panics with what it
/// said if it stops first.
pub(crate) fn proxy(config: &Path) -> Started {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .args(["proxy", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    let line = loop {
        match lines.next() {
            Some(Ok(l)) if l.contains(", local API ") => break l,
            Some(Ok(l)) => said.push(l),
            _ => panic!(
                "the sidecar stopped before it listened: {}",
                said.join(" | ")
            ),
        }
    };
    // The rest of its stderr is read (and dropped) so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let after = |marker: &str| -> SocketAddr {
        let rest = line.split_once(marker).unwrap().1.trim();
        rest.split([' ', ',']).next().unwrap().parse().unwrap()
    };
    Started {
        inbound: after(": inbound "),
        local: after(", local API "),
        child,
    }
}
