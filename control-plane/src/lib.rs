//! flowmesh-control-plane: a Raft cluster (openraft + redb) that holds the deployed models,
//! who owns them, rollout weights, message routes and the service registry.
//!
//! ```text
//!  client ──HTTP──► api ──(follower: forward)──► leader's api
//!                    │ write                         │
//!                    ▼                               ▼
//!                proposer ─batch─► openraft ──► log (redb, fsync) ──► state machine (redb)
//!                                     │  ▲                                  │
//!                          network ◄──┘  └── /raft/* from peers             ▼
//!                                                                 state (models, registry)
//! ```
//!
//! - [`node`]: options → build → run(shutdown), and a handle.
//! - [`api`] (private): the HTTP routes. [`client`]: the client of them.
//! - [`state`]: the replicated state and the commands that change it.
//! - [`storage`]: the Raft log and the state machine in one redb file.
//! - [`network`]: Raft RPC over HTTP; [`proposer`]: batching writes into entries.
//! - [`server`]: serving the API with a header-read timeout, a connection cap and a drain.
//! - `monitor` (private): the monitor's pages and JSON, gathered from the sidecars.

mod api;
pub mod client;
pub mod codec;
pub mod faults;
pub mod http;
mod monitor;
pub mod network;
pub mod node;
pub mod proposer;
pub mod server;
pub mod state;
pub mod storage;
pub mod timer;
pub mod types;

pub use monitor::MonitorOptions;
pub use node::{ControlPlane, Handle, Options};
