//! flowmesh-bpmn: BPMN 2.0 models, FEEL, and the workflow engine that runs them.
//!
//! - [`parse`]: BPMN 2.0 XML → [`model::Definitions`], with limits against hostile input.
//! - [`model`]: the validated executable graph (arena of elements, indexes not pointers).
//! - [`feel`]: the FEEL subset Zeebe users write.

pub mod feel;
pub mod model;
pub mod parse;

pub use parse::{parse, parse_bytes};
