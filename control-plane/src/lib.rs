//! flowmesh-control-plane: a Raft cluster (openraft + redb) that holds the deployed models,
//! who owns them, rollout weights, message routes and the service registry.
//!
//! - [`state`]: the replicated state and the commands that change it.
//! - [`storage`]: the Raft log and the state machine in one redb file.
//! - [`types`]: the Raft type configuration.

pub mod state;
pub mod storage;
pub mod types;
