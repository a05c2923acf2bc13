//! flowmesh-proxy: the sidecar. It stands next to one service: the data plane proxies the
//! service's HTTP traffic (callers → app, app → other services through their sidecars), and
//! the engine's state lives durably in its redb file.
//!
//! - [`config`]: the TOML file. [`sidecar`]: options → build → run, and a handle.
//! - [`routing`]: which service an app's request is for, and checks on the mesh side;
//!   [`registry`]: the live instances, followed from the control plane and cached in redb
//!   ([`cache`]), and picked by their load ([`balance`]); [`registration`]: this sidecar's own
//!   entry; [`control`]: which node to ask.
//! - [`server`]: serving a listener (HTTP/1.1 and HTTP/2, limits, graceful stop);
//!   [`front`]: our own HTTP/1 server side, which refuses ambiguous framing and hostile heads
//!   before anything reaches the app; [`forward`]: sending a request upstream and streaming
//!   the answer back; [`hop`]: hop-by-hop headers; [`link`]: an HTTP/1 client connection's
//!   own app connection; [`body`]: the body type and JSON error answers.
//! - [`observe`]: the models' HTTP bindings, followed from the control plane, matched against
//!   requests; [`telemetry`]: spans, trace stitching by business key, OTLP export.
//! - [`local_api`]: health, readiness, metrics; [`metrics`]: Prometheus text.
//! - [`engine_store`]: engine state in a redb file, one fsynced transaction per batch.

pub mod balance;
pub mod body;
mod boxed;
pub mod cache;
pub mod chunked;
pub mod config;
pub mod control;
pub mod deployments;
pub mod engine_store;
pub mod fields;
pub mod forward;
pub mod front;
pub mod hop;
pub mod kafka;
pub mod link;
pub mod local_api;
pub mod metrics;
pub mod observe;
pub mod prefixed;
pub mod registration;
pub mod registry;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod sidecar;
pub mod telemetry;
pub mod timer;
mod untouched;
pub mod vectored;

pub use sidecar::{Handle, Sidecar};
