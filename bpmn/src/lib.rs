//! flowmesh-bpmn: BPMN 2.0 models, FEEL, and the workflow engine that runs them.

pub mod feel;
