//! The control-plane nodes this sidecar may talk to: one is used until it fails, then the next
//! (any node serves: followers forward writes and answer reads).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flowmesh_control_plane::client::Client;

#[derive(Clone)]
pub struct ControlPlanes {
    clients: Arc<Vec<Client>>,
    at: Arc<AtomicUsize>,
}

impl ControlPlanes {
    /// `None` when the list is empty (a sidecar without a control plane).
    pub fn new(urls: &[String], token: Option<String>) -> Option<ControlPlanes> {
        let clients: Vec<Client> = urls
            .iter()
            .map(|u| Client::new(u, token.clone()).with_timeout(Duration::from_secs(5)))
            .collect();
        (!clients.is_empty()).then(|| ControlPlanes {
            clients: Arc::new(clients),
            at: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn current(&self) -> &Client {
        &self.clients[self.at.load(Ordering::Relaxed) % self.clients.len()]
    }

    /// The current node failed: the next request goes to the next one.
    pub fn failed(&self) {
        self.at.fetch_add(1, Ordering::Relaxed);
    }
}
