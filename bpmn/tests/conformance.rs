//! The engine conformance suite on the in-memory store.

flowmesh_bpmn::conformance_suite!(flowmesh_bpmn::store::MemoryStore::new());
