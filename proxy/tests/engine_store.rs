//! The engine conformance suite on redb files (a fresh file in a temp dir per scenario), and
//! what only a durable store can show: state survives closing and reopening the file.

#![allow(clippy::unwrap_used)]

use flowmesh_bpmn::engine::{Accepted, Command, Engine, Options};
use flowmesh_bpmn::store::Store;
use flowmesh_bpmn::testing::{suite, vars};
use flowmesh_proxy::engine_store::RedbStore;
use serde_json::json;

/// A redb store in a temp dir that is removed when the store is dropped.
pub struct TempRedb {
    store: RedbStore,
    _dir: tempfile::TempDir,
}

impl TempRedb {
    fn new() -> TempRedb {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("engine.redb")).unwrap();
        TempRedb { store, _dir: dir }
    }
}

impl Store for TempRedb {
    fn transact<R, E: From<flowmesh_bpmn::store::Error>>(
        &mut self,
        f: impl FnOnce(&mut dyn flowmesh_bpmn::store::Kv) -> Result<R, E>,
    ) -> Result<R, E> {
        self.store.transact(f)
    }

    fn read<R, E: From<flowmesh_bpmn::store::Error>>(
        &self,
        f: impl FnOnce(&dyn flowmesh_bpmn::store::KvRead) -> Result<R, E>,
    ) -> Result<R, E> {
        self.store.read(f)
    }
}

mod conformance {
    flowmesh_bpmn::conformance_suite!(super::TempRedb::new());
}

#[test]
fn state_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engine.redb");
    let now: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let (instance, job) = {
        let mut store = RedbStore::open(&path).unwrap();
        let mut engine = Engine::new(Options::default());
        let deploy = Command::Deploy {
            resource: "t.bpmn".into(),
            xml: suite::THREE_TASKS.into(),
        };
        let create = Command::CreateInstance {
            process_id: "three-tasks".into(),
            version: None,
            variables: vars(json!({"n": 1})),
        };
        let batch = engine.process(&mut store, now, [deploy, create]).unwrap();
        let Ok(Accepted::Created { instance }) = batch.results[1] else {
            panic!("{:?}", batch.results)
        };
        let jobs = store.read(|kv| engine.pending_jobs(kv)).unwrap();
        assert_eq!(jobs.len(), 1);
        (instance, jobs[0].key)
    };
    // A new process, a new engine: everything comes from the file.
    let mut store = RedbStore::open(&path).unwrap();
    let mut engine = Engine::new(Options::default());
    let jobs = store.read(|kv| engine.pending_jobs(kv)).unwrap();
    assert_eq!(
        jobs.iter()
            .map(|j| (j.key, j.instance, j.element_id.as_str()))
            .collect::<Vec<_>>(),
        [(job, instance, "t1")]
    );
    assert_eq!(
        jobs[0].variables.get("n").map(|v| v.to_json()),
        Some(json!(1))
    );
    let batch = engine
        .process(
            &mut store,
            now,
            [Command::CompleteJob {
                key: job,
                variables: vars(json!({})),
            }],
        )
        .unwrap();
    assert_eq!(batch.results, [Ok(Accepted::Done)]);
    assert_eq!(
        store.read(|kv| engine.pending_jobs(kv)).unwrap()[0].element_id,
        "t2"
    );
}

#[test]
fn a_failed_batch_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(&dir.path().join("engine.redb")).unwrap();
    let before = store
        .read(|kv| flowmesh_bpmn::engine::state::Reader::new(kv).next_key())
        .unwrap();
    let result: Result<(), flowmesh_bpmn::store::Error> = store.transact(|kv| {
        kv.put(flowmesh_bpmn::store::Table::Meta, b"next_key", b"garbage")?;
        Err(flowmesh_bpmn::store::Error::Io("simulated failure".into()))
    });
    assert!(result.is_err());
    let after = store
        .read(|kv| flowmesh_bpmn::engine::state::Reader::new(kv).next_key())
        .unwrap();
    assert_eq!(before, after);
}
