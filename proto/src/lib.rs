//! flowmesh-proto: the types that cross a process boundary, as JSON. No logic.
//!
//! - [`control`]: the control plane's HTTP API (models, rollouts, services, watch, cluster).
//! - [`error`]: the error body every API answers refusals with.
//! - [`monitor`]: what sidecars report to the monitor (per-model statistics).

pub mod control;
pub mod error;
pub mod monitor;
