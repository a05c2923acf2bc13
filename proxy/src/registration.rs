//! This sidecar's own entry in the service registry: registered at start with its mesh
//! address, renewed well before the lease ends, retried with backoff while the control plane
//! is away, and removed on a graceful stop.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::control::ControlPlanes;
use flowmesh_proto::control::RegisterRequest;

/// How long the registry keeps this instance without a renewal.
pub const LEASE: Duration = Duration::from_secs(10);

/// Registers `service`/`instance` with `addresses` and the event topics it subscribes to, and
/// renews it every third of the lease,
/// until the task is dropped.
pub async fn keep(
    control: ControlPlanes,
    service: String,
    instance: String,
    addresses: BTreeMap<String, String>,
    topics: Vec<String>,
) {
    let request = RegisterRequest {
        addresses,
        lease_seconds: LEASE.as_secs(),
        topics,
    };
    let mut retry = Duration::from_millis(100);
    let mut registered = false;
    loop {
        match control
            .current()
            .register(&service, &instance, &request)
            .await
        {
            Ok(_) => {
                if !registered {
                    tracing::info!(%service, %instance, "registered with the control plane");
                    registered = true;
                }
                retry = Duration::from_millis(100);
                crate::timer::sleep(LEASE / 3).await;
            }
            Err(e) => {
                tracing::warn!(%service, %instance, "cannot register or renew: {e}");
                registered = false;
                control.failed();
                crate::timer::sleep(retry).await;
                retry = (retry * 2).min(LEASE / 3);
            }
        }
    }
}

/// Best effort, bounded: the lease would end on its own anyway.
pub async fn leave(control: &ControlPlanes, service: &str, instance: &str) {
    let goodbye = control.current().deregister(service, instance);
    match crate::timer::timeout(Duration::from_secs(2), goodbye).await {
        Ok(Ok(_)) => tracing::info!(%service, %instance, "deregistered"),
        Ok(Err(e)) => tracing::warn!(%service, %instance, "cannot deregister: {e}"),
        Err(_) => tracing::warn!(%service, %instance, "deregistration timed out"),
    }
}
