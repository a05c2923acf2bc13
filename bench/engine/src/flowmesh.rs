//! flowmesh's engine driven the way the sidecar drives it: batches of commands, each one store
//! transaction; job workers in-process that complete every job in the next batch.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use flowmesh_bpmn::engine::{Accepted, Action, Command, Engine, Event, Lifecycle, Options};
use flowmesh_bpmn::feel::{Context, Value};
use flowmesh_bpmn::store::{MemoryStore, Store};
use flowmesh_proxy::engine_store::RedbStore;

#[derive(Clone, Copy)]
pub(crate) enum Storage<'a> {
    Memory,
    /// A redb file in this directory, every batch committed with fsync.
    Redb(&'a Path),
}

pub(crate) struct Throughput {
    pub(crate) instances: u64,
    pub(crate) pi_per_s: f64,
    pub(crate) all_tasks_ran: bool,
}

pub(crate) struct Latency {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) achieved_per_s: f64,
}

/// New instances per batch: group commit lets many advance per transaction.
const STARTS_PER_BATCH: u64 = 256;

fn now() -> jiff::Timestamp {
    jiff::Timestamp::UNIX_EPOCH
}

/// Runs `count` instances of the three-task model to completion.
pub(crate) fn throughput(xml: &str, storage: Storage<'_>, count: u64) -> Throughput {
    match storage {
        Storage::Memory => run_three_tasks(MemoryStore::new(), xml, count),
        Storage::Redb(dir) => {
            let store = RedbStore::open(&dir.join("three-tasks.redb")).expect("redb opens");
            run_three_tasks(store, xml, count)
        }
    }
}

fn run_three_tasks<S: Store>(mut store: S, xml: &str, count: u64) -> Throughput {
    let mut engine = Engine::new(Options::default());
    deploy(&mut engine, &mut store, xml);
    let mut jobs: Vec<(u64, String)> = Vec::new();
    let mut per_type: HashMap<String, u64> = HashMap::new();
    let (mut created, mut completed) = (0u64, 0u64);
    let started = Instant::now();
    while completed < count {
        let mut commands: Vec<Command> = jobs
            .drain(..)
            .map(|(key, job_type)| {
                *per_type.entry(job_type).or_default() += 1;
                Command::CompleteJob {
                    key,
                    variables: Context::new(),
                }
            })
            .collect();
        let starting = STARTS_PER_BATCH.min(count - created);
        for _ in 0..starting {
            commands.push(Command::CreateInstance {
                process_id: "three-tasks".into(),
                version: None,
                variables: Context::new(),
            });
        }
        created += starting;
        let batch = engine
            .process(&mut store, now(), commands)
            .expect("batch commits");
        for action in batch.actions {
            if let Action::Job(j) = action {
                jobs.push((j.key, j.job_type));
            }
        }
        completed += finished_instances(&batch.events);
    }
    let elapsed = started.elapsed();
    let all_tasks_ran = ["t1", "t2", "t3"]
        .iter()
        .all(|t| per_type.get(*t) == Some(&count));
    Throughput {
        instances: count,
        pi_per_s: count as f64 / elapsed.as_secs_f64(),
        all_tasks_ran,
    }
}

/// The gateway + message model: half the orders take each branch; a payment message for each
/// order is published once its task is done.
pub(crate) fn gateway_message(xml: &str, storage: Storage<'_>, count: u64) -> Throughput {
    match storage {
        Storage::Memory => run_gateway_message(MemoryStore::new(), xml, count),
        Storage::Redb(dir) => {
            let store = RedbStore::open(&dir.join("gateway-message.redb")).expect("redb opens");
            run_gateway_message(store, xml, count)
        }
    }
}

fn run_gateway_message<S: Store>(mut store: S, xml: &str, count: u64) -> Throughput {
    let mut engine = Engine::new(Options::default());
    deploy(&mut engine, &mut store, xml);
    let mut jobs: Vec<(u64, String)> = Vec::new();
    let (mut created, mut completed, mut tasks) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    while completed < count {
        let mut commands = Vec::new();
        for (key, order) in jobs.drain(..) {
            tasks += 1;
            commands.push(Command::CompleteJob {
                key,
                variables: Context::new(),
            });
            commands.push(Command::Publish {
                name: "Paid".into(),
                correlation_key: order,
                variables: Context::new(),
                ttl_ms: 0,
                message_id: None,
            });
        }
        let starting = STARTS_PER_BATCH.min(count - created);
        for i in created..created + starting {
            let mut variables = Context::new();
            variables.insert("orderId".into(), Value::from(format!("order-{i}")));
            variables.insert(
                "amount".into(),
                Value::from(if i % 2 == 0 { 500 } else { 50 }),
            );
            commands.push(Command::CreateInstance {
                process_id: "gateway-message".into(),
                version: None,
                variables,
            });
        }
        created += starting;
        let batch = engine
            .process(&mut store, now(), commands)
            .expect("batch commits");
        for action in batch.actions {
            if let Action::Job(j) = action {
                let order = j
                    .variables
                    .get("orderId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                jobs.push((j.key, order));
            }
        }
        completed += finished_instances(&batch.events);
    }
    let elapsed = started.elapsed();
    Throughput {
        instances: count,
        pi_per_s: count as f64 / elapsed.as_secs_f64(),
        all_tasks_ran: tasks == count,
    }
}

/// Offers `rate` new instances per second on redb (fsync per batch) and measures each one's
/// start-to-completion time: from its arrival to the commit of the batch that completed it.
pub(crate) fn latency(xml: &str, dir: &Path, rate: f64, count: u64) -> Latency {
    let mut store = RedbStore::open(&dir.join("latency.redb")).expect("redb opens");
    let mut engine = Engine::new(Options::default());
    deploy(&mut engine, &mut store, xml);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut jobs: Vec<u64> = Vec::new();
    let mut arrived_at: HashMap<u64, Instant> = HashMap::new();
    let mut latencies: Vec<Duration> = Vec::with_capacity(count as usize);
    let mut arrivals = 0u64;
    let started = Instant::now();
    while (latencies.len() as u64) < count {
        let mut commands: Vec<Command> = jobs
            .drain(..)
            .map(|key| Command::CompleteJob {
                key,
                variables: Context::new(),
            })
            .collect();
        let mut arrival_times = Vec::new();
        while arrivals < count {
            let due = started + interval.mul_f64(arrivals as f64);
            if due > Instant::now() {
                break;
            }
            commands.push(Command::CreateInstance {
                process_id: "three-tasks".into(),
                version: None,
                variables: Context::new(),
            });
            arrival_times.push(due);
            arrivals += 1;
        }
        if commands.is_empty() {
            // Nothing to do until the next instance arrives.
            let due = started + interval.mul_f64(arrivals as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            continue;
        }
        let creates_from = commands.len() - arrival_times.len();
        let before = Instant::now();
        let batch = engine
            .process(&mut store, now(), commands)
            .expect("batch commits");
        let committed = Instant::now();
        if std::env::var_os("FLOWMESH_BENCH_TRACE").is_some()
            && committed - before > Duration::from_millis(20)
        {
            eprintln!(
                "slow batch at {:?}: {:?}",
                before - started,
                committed - before
            );
        }
        for (result, due) in batch.results[creates_from..].iter().zip(arrival_times) {
            if let Ok(Accepted::Created { instance }) = result {
                arrived_at.insert(*instance, due);
            }
        }
        for action in batch.actions {
            if let Action::Job(j) = action {
                jobs.push(j.key);
            }
        }
        for e in &batch.events {
            if let Event::Element {
                intent: Lifecycle::Completed,
                element,
                ..
            } = e
                && element.scope.is_none()
                && let Some(due) = arrived_at.remove(&element.key)
            {
                latencies.push(committed - due);
            }
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };
    Latency {
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        achieved_per_s: count as f64 / elapsed.as_secs_f64(),
    }
}

fn deploy<S: Store>(engine: &mut Engine, store: &mut S, xml: &str) {
    let batch = engine
        .process(
            store,
            now(),
            [Command::Deploy {
                resource: "bench.bpmn".into(),
                xml: xml.into(),
            }],
        )
        .expect("deploy commits");
    assert!(
        matches!(batch.results[0], Ok(Accepted::Deployed(_))),
        "{:?}",
        batch.results[0]
    );
}

fn finished_instances(events: &[Event]) -> u64 {
    events
        .iter()
        .filter(|e| matches!(e, Event::Element { intent: Lifecycle::Completed, element, .. } if element.scope.is_none()))
        .count() as u64
}
