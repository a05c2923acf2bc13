//! Fault injection for tests: cut this node off from chosen peers inside the RPC layer, in both
//! directions, to simulate a network partition on one machine. Only reachable when the node was
//! started with fault injection enabled.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::RwLock;

use crate::types::NodeId;

#[derive(Clone, Default)]
pub struct Faults {
    cut: Arc<RwLock<BTreeSet<NodeId>>>,
}

impl Faults {
    pub async fn is_cut(&self, peer: NodeId) -> bool {
        self.cut.read().await.contains(&peer)
    }

    pub async fn cut(&self, peers: BTreeSet<NodeId>) {
        *self.cut.write().await = peers;
    }

    pub async fn current(&self) -> BTreeSet<NodeId> {
        self.cut.read().await.clone()
    }
}
