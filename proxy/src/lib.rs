//! flowmesh-proxy: the sidecar. So far it holds the durable home of the workflow engine's
//! state; the data plane, event bus and runtime build on it.
//!
//! - [`engine_store`]: engine state in a redb file, one fsynced transaction per batch.

pub mod engine_store;
