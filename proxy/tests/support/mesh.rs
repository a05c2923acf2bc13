//! A control plane and sidecars in this process, on 127.0.0.1 with free ports and real redb
//! files, for the proxy's multi-sidecar tests.

// Tests run on tokio's test runtimes, which have a time driver of their own.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use flowmesh_control_plane::{ControlPlane, Options};
use flowmesh_proxy::config::Config;
use flowmesh_proxy::{Handle, Sidecar};
use tokio::sync::oneshot;

pub(crate) const TOKEN: &str = "mesh-test-token";
pub(crate) const UP: Duration = Duration::from_secs(15);

pub(crate) struct Stopper(Option<oneshot::Sender<()>>);

impl Stopper {
    pub(crate) fn stop(&mut self) {
        if let Some(s) = self.0.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) async fn control_plane(dir: &Path) -> (String, Stopper, tokio::task::JoinHandle<()>) {
    let mut options = Options::new(1, "127.0.0.1:0".parse().unwrap(), dir.join("cp"));
    options.token = Some(TOKEN.to_owned());
    let node = ControlPlane::build(options).await.unwrap();
    let url = format!("http://{}", node.handle().addr);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = node
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    (url, Stopper(Some(stop)), task)
}

/// A sidecar of `service` in front of `app`, data in `dir`, following `control_plane`;
/// `extra` is appended to its config file.
pub(crate) async fn sidecar(
    service: &str,
    app: SocketAddr,
    dir: &Path,
    control_plane: &str,
    extra: &str,
) -> (Handle, Stopper, tokio::task::JoinHandle<()>) {
    sidecar_listening(service, app, dir, control_plane, LOOPBACK, extra).await
}

/// A sidecar as `sidecar` makes one, with the keys of its `[listen]` section given.
pub(crate) async fn sidecar_listening(
    service: &str,
    app: SocketAddr,
    dir: &Path,
    control_plane: &str,
    listen: &str,
    extra: &str,
) -> (Handle, Stopper, tokio::task::JoinHandle<()>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let head = format!(
        "control_plane = [\"{control_plane}\"]\ntoken_file = \"{}/token\"\n",
        dir.display()
    );
    start(service, app, dir, &head, listen, extra).await
}

/// A sidecar without a control plane.
pub(crate) async fn standalone(
    service: &str,
    app: SocketAddr,
    dir: &Path,
    extra: &str,
) -> (Handle, Stopper, tokio::task::JoinHandle<()>) {
    start(service, app, dir, "", LOOPBACK, extra).await
}

/// Every listener on a free port of 127.0.0.1.
const LOOPBACK: &str = "local = \"127.0.0.1:0\"\ninbound = \"127.0.0.1:0\"\noutbound = \"127.0.0.1:0\"\nmesh = \"127.0.0.1:0\"";

async fn start(
    service: &str,
    app: SocketAddr,
    dir: &Path,
    head: &str,
    listen: &str,
    extra: &str,
) -> (Handle, Stopper, tokio::task::JoinHandle<()>) {
    let text = format!(
        r#"
service = "{service}"
data_dir = "{dir}"
{head}
[app]
address = "{app}"
[listen]
{listen}
{extra}
"#,
        dir = dir.display()
    );
    let sidecar = Sidecar::build(Config::parse(&text).unwrap()).await.unwrap();
    let handle = sidecar.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = sidecar
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    (handle, Stopper(Some(stop)), task)
}

/// Waits until `handle`'s registry can route to `service` (or, with `false`, cannot).
pub(crate) async fn routable(handle: &Handle, service: &str, wanted: bool) {
    let deadline = Instant::now() + UP;
    while handle.registry.pick(service).is_ok() != wanted {
        assert!(
            Instant::now() < deadline,
            "{service} routable={wanted} never held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `handle`'s registry lists `n` instances of `service`.
pub(crate) async fn listed(handle: &Handle, service: &str, n: usize) {
    let deadline = Instant::now() + UP;
    while handle.registry.count(service) != n {
        assert!(
            Instant::now() < deadline,
            "{service} never had {n} instances listed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
