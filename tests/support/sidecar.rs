//! A `flowmesh proxy` process for tests across real processes: configured in a temp dir with
//! every listener on port 0, killed (SIGKILL) when dropped, restartable on its data.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;

use super::announced;
use super::cluster::TOKEN;

pub(crate) struct Sidecar {
    pub(crate) child: Child,
    pub(crate) config: PathBuf,
    pub(crate) local: SocketAddr,
}

impl Sidecar {
    /// A sidecar of `service` in front of `app`, registered with the control plane `cp`;
    /// `extra` is appended to its config (tables such as `[jobs]`).
    pub(crate) fn spawn(
        dir: &Path,
        service: &str,
        app: SocketAddr,
        cp: &str,
        extra: &str,
    ) -> Sidecar {
        Sidecar::spawn_named(dir, service, None, app, cp, extra)
    }

    /// The same with an instance name (several sidecars of one service).
    pub(crate) fn spawn_named(
        dir: &Path,
        service: &str,
        instance: Option<&str>,
        app: SocketAddr,
        cp: &str,
        extra: &str,
    ) -> Sidecar {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("token"), TOKEN).unwrap();
        let config = dir.join("sidecar.toml");
        let instance = instance
            .map(|i| format!("instance = \"{i}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "service = \"{service}\"\n{instance}data_dir = \"{data}\"\ncontrol_plane = [\"{cp}\"]\ntoken_file = \"{data}/token\"\n\
                 [app]\naddress = \"{app}\"\n\
                 [listen]\nlocal = \"127.0.0.1:0\"\ninbound = \"127.0.0.1:0\"\noutbound = \"127.0.0.1:0\"\nmesh = \"127.0.0.1:0\"\n\
                 [telemetry]\notlp_endpoint = \"none\"\n{extra}",
                data = dir.display()
            ),
        )
        .unwrap();
        let started = announced::proxy(&config);
        Sidecar {
            child: started.child,
            config,
            local: started.local,
        }
    }

    pub(crate) fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The same sidecar again, on the ports it gets now.
    pub(crate) fn restart(&mut self) {
        let started = announced::proxy(&self.config);
        self.child = started.child;
        self.local = started.local;
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
