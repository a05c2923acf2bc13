//! flowmesh-bpmn: BPMN 2.0 models, FEEL, and the workflow engine that runs them.
//!
//! - [`parse`]: BPMN 2.0 XML → [`model::Definitions`], with limits against hostile input.
//! - [`model`]: the validated executable graph (arena of elements, indexes not pointers).
//! - [`feel`]: the FEEL subset Zeebe users write.
//! - [`engine`]: commands in, events and actions out; state behind [`store`].
//! - [`store`]: the transactional key-value interface engine state lives in, and an in-memory
//!   implementation.

pub mod engine;
pub mod feel;
pub mod migrate;
pub mod model;
pub mod parse;
pub mod render;
pub mod store;

pub use parse::{parse, parse_bytes};

#[cfg(any(test, feature = "testing"))]
pub mod testing;
