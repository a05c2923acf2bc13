//! flowmesh-proxy: the sidecar. It stands next to one service: the data plane proxies the
//! service's HTTP traffic (inbound now; outbound and the mesh next), and the engine's state
//! lives durably in its redb file.
//!
//! - [`config`]: the TOML file. [`sidecar`]: options → build → run, and a handle.
//! - [`server`]: serving a listener (HTTP/1.1 and HTTP/2, limits, graceful stop);
//!   [`forward`]: sending a request upstream and streaming the answer back; [`hop`]:
//!   hop-by-hop headers; [`body`]: the body type and JSON error answers.
//! - [`local_api`]: health, readiness, metrics; [`metrics`]: Prometheus text.
//! - [`engine_store`]: engine state in a redb file, one fsynced transaction per batch.

pub mod body;
pub mod config;
pub mod engine_store;
pub mod forward;
pub mod hop;
pub mod local_api;
pub mod metrics;
pub mod server;
pub mod sidecar;

pub use sidecar::{Handle, Sidecar};
