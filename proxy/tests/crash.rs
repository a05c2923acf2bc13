//! kill -9 at any point loses no acknowledged step and does none twice.
//!
//! A child process (this test binary, re-run as `crash_child`) drives the engine on a redb file:
//! each batch completes every pending job and starts a few new instances, and in the same
//! transaction records in a ledger table how often each element of each instance completed.
//! After each commit it prints an acknowledgement. The parent kills it with SIGKILL after a
//! varying number of acknowledgements, many times, then lets it finish. Every instance must have
//! completed every element exactly once, and every acknowledged count must have survived.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use flowmesh_bpmn::engine::{self, Command as EngineCommand, Engine, Event, Lifecycle, Options};
use flowmesh_bpmn::store::Store;
use flowmesh_bpmn::testing::{suite, vars};
use flowmesh_proxy::engine_store::RedbStore;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

const LEDGER: TableDefinition<'static, &str, u64> = TableDefinition::new("crash_ledger");
const INSTANCES: u64 = 150;
const STARTS_PER_BATCH: u64 = 4;
const ROUNDS: u64 = 20;

/// The child: runs until all instances completed, acknowledging each commit on stdout.
#[test]
#[ignore = "run by crash_at_any_point_loses_nothing_and_repeats_nothing as a child process"]
fn crash_child() {
    let Ok(path) = std::env::var("FLOWMESH_CRASH_DB") else {
        return;
    };
    let mut store = RedbStore::open(Path::new(&path)).unwrap();
    let mut engine = Engine::new(Options::default());
    let now: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let counts = read_counts(&store);
    println!("start created={} completed={}", counts.0, counts.1);
    let mut first = true;
    loop {
        let (created, completed) = store
            .transact_with(|kv, txn| -> Result<(u64, u64), engine::Error> {
                let mut ledger = txn.open_table(LEDGER).map_err(io)?;
                let created = get(&ledger, "created")?;
                let mut commands = Vec::new();
                if first {
                    // Deploying the same file again makes no new version.
                    commands.push(EngineCommand::Deploy {
                        resource: "three-tasks.bpmn".into(),
                        xml: suite::THREE_TASKS.into(),
                    });
                }
                for job in engine.pending_jobs(&*kv)? {
                    let mut done = serde_json::Map::new();
                    done.insert(job.element_id.clone(), serde_json::Value::Bool(true));
                    commands.push(EngineCommand::CompleteJob {
                        key: job.key,
                        variables: vars(serde_json::Value::Object(done)),
                    });
                }
                let starting = STARTS_PER_BATCH.min(INSTANCES - created);
                for _ in 0..starting {
                    commands.push(EngineCommand::CreateInstance {
                        process_id: "three-tasks".into(),
                        version: None,
                        variables: vars(serde_json::json!({})),
                    });
                }
                let batch = engine.execute(kv, now, commands)?;
                assert!(
                    batch.results.iter().all(Result::is_ok),
                    "{:?}",
                    batch.results
                );
                for e in &batch.events {
                    if let Event::Element {
                        intent: Lifecycle::Completed,
                        element,
                        ..
                    } = e
                    {
                        let key = format!("done/{}/{}", element.instance, element.element.0);
                        let n = get(&ledger, &key)?;
                        ledger.insert(key.as_str(), n + 1).map_err(io)?;
                        if element.scope.is_none() {
                            let c = get(&ledger, "completed")?;
                            ledger.insert("completed", c + 1).map_err(io)?;
                        }
                    }
                }
                ledger.insert("created", created + starting).map_err(io)?;
                let completed = get(&ledger, "completed")?;
                Ok((created + starting, completed))
            })
            .unwrap();
        engine.committed();
        first = false;
        println!("ack created={created} completed={completed}");
        if completed == INSTANCES {
            println!("done");
            return;
        }
    }
}

fn io(e: impl std::fmt::Display) -> engine::Error {
    engine::Error::Store(flowmesh_bpmn::store::Error::Io(e.to_string()))
}

fn get(table: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, engine::Error> {
    Ok(table.get(key).map_err(io)?.map_or(0, |v| v.value()))
}

fn read_counts(store: &RedbStore) -> (u64, u64) {
    let txn = store.database().begin_read().unwrap();
    match txn.open_table(LEDGER) {
        Ok(t) => (get(&t, "created").unwrap(), get(&t, "completed").unwrap()),
        Err(_) => (0, 0),
    }
}

fn parse(line: &str, prefix: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix(prefix)?;
    let mut parts = rest.split_whitespace();
    let created = parts.next()?.strip_prefix("created=")?.parse().ok()?;
    let completed = parts.next()?.strip_prefix("completed=")?.parse().ok()?;
    Some((created, completed))
}

#[test]
fn crash_at_any_point_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.redb");
    let exe = std::env::current_exe().unwrap();
    let mut last_ack: (u64, u64) = (0, 0);
    let mut kills = 0;
    let mut finished = false;
    for round in 0..=ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FLOWMESH_CRASH_DB", &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        // Vary where the kill lands: after 1..=7 acknowledged batches; the last round runs free.
        let kill_after = if round == ROUNDS {
            u64::MAX
        } else {
            1 + (round * 5) % 7
        };
        let mut acks = 0;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(start) = parse(&line, "start ") {
                assert!(
                    start.0 >= last_ack.0 && start.1 >= last_ack.1,
                    "round {round}: acknowledged {last_ack:?} but the restart found {start:?}"
                );
            }
            if let Some(ack) = parse(&line, "ack ") {
                last_ack = ack;
                acks += 1;
                if acks == kill_after {
                    child.kill().unwrap();
                    kills += 1;
                    break;
                }
            }
            if line == "done" {
                finished = true;
            }
        }
        let status = child.wait().unwrap();
        if finished {
            assert!(status.success(), "the child failed: {status}");
            break;
        }
    }
    assert!(finished, "the child never finished");
    assert!(
        kills >= 5,
        "only {kills} kills landed; the test proves little"
    );

    let mut store = RedbStore::open(&db).unwrap();
    let txn = store.database().begin_read().unwrap();
    let ledger = txn.open_table(LEDGER).unwrap();
    assert_eq!(get(&ledger, "created").unwrap(), INSTANCES);
    assert_eq!(get(&ledger, "completed").unwrap(), INSTANCES);
    let mut per_instance: std::collections::BTreeMap<String, u64> =
        std::collections::BTreeMap::new();
    for entry in ledger.iter().unwrap() {
        let (k, v) = entry.unwrap();
        let key = k.value().to_owned();
        if let Some(rest) = key.strip_prefix("done/") {
            assert_eq!(v.value(), 1, "{key} completed {} times", v.value());
            let instance = rest.split('/').next().unwrap().to_owned();
            *per_instance.entry(instance).or_default() += 1;
        }
    }
    drop(ledger);
    drop(txn);
    assert_eq!(per_instance.len() as u64, INSTANCES);
    // Process, start, three tasks, end: six elements completed per instance.
    assert!(per_instance.values().all(|n| *n == 6), "{per_instance:?}");
    let mut engine = Engine::new(Options::default());
    assert!(store.read(|kv| engine.pending_jobs(kv)).unwrap().is_empty());
    let leftover = store
        .transact(|kv| -> Result<usize, engine::Error> {
            Ok(engine
                .execute(kv, jiff::Timestamp::UNIX_EPOCH, [EngineCommand::Tick])?
                .events
                .len())
        })
        .unwrap();
    assert_eq!(leftover, 0, "nothing is left to do");
}
