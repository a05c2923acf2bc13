//! Property tests: random command sequences never panic or corrupt state, and replaying the
//! events they produced on empty state rebuilds exactly the same state.

#![allow(clippy::unwrap_used)]

use flowmesh_bpmn::engine::{self, Command};
use flowmesh_bpmn::store::{MemoryStore, Store};
use flowmesh_bpmn::testing::{Harness, suite, vars};
use jiff::SignedDuration;
use proptest::prelude::*;
use serde_json::json;

const PROCESSES: [(&str, &str); 10] = [
    ("three-tasks", suite::THREE_TASKS),
    ("boundaries", suite::BOUNDARIES),
    ("event-gateway", suite::EVENT_GATEWAY),
    ("messages", suite::MESSAGES),
    ("compensation", suite::COMPENSATION),
    ("subprocess", suite::SUBPROCESS),
    ("parallel", suite::PARALLEL),
    ("exclusive-no-default", suite::EXCLUSIVE_NO_DEFAULT),
    ("timers", suite::TIMERS),
    ("retail-payment", suite::RETAIL_PAYMENT),
];
const MESSAGES: [&str; 7] = [
    "PaymentReceived",
    "GoodsShipped",
    "OrderCancelled",
    "OrderUpdated",
    "RetrievePaymentCommand",
    "CreditCardUpdated",
    "OrderPlaced",
];
const KEYS: [&str; 3] = ["o-1", "o-2", ""];
const CODES: [&str; 4] = ["REJECTED", "FAILED", "Error_PaymentError", "OTHER"];

#[derive(Clone, Debug)]
enum Op {
    Create(usize),
    Complete(usize),
    Fail(usize, u32, u64),
    Throw(usize, usize),
    Publish(usize, usize, bool),
    Advance(i64),
    Cancel(usize),
    Resolve(usize),
    SetVariables(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PROCESSES.len()).prop_map(Op::Create),
        5 => any::<usize>().prop_map(Op::Complete),
        1 => (any::<usize>(), 0u32..3, prop_oneof![Just(0u64), Just(5_000u64)]).prop_map(|(j, r, b)| Op::Fail(j, r, b)),
        1 => (any::<usize>(), 0..CODES.len()).prop_map(|(j, c)| Op::Throw(j, c)),
        2 => (0..MESSAGES.len(), 0..KEYS.len(), any::<bool>()).prop_map(|(m, k, ttl)| Op::Publish(m, k, ttl)),
        2 => prop_oneof![Just(1i64), Just(30), Just(61), Just(3600), Just(7 * 86_400)].prop_map(Op::Advance),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => any::<usize>().prop_map(Op::Resolve),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, a)| Op::SetVariables(i, a)),
    ]
}

/// Runs the ops; every command must be accepted or cleanly rejected (the harness panics on
/// engine errors).
fn run(ops: &[Op]) -> Harness<MemoryStore> {
    let mut h = Harness::new(MemoryStore::new());
    for (_, xml) in PROCESSES {
        h.deploy(xml);
    }
    let mut instances: Vec<u64> = Vec::new();
    for op in ops {
        match op {
            Op::Create(p) => {
                let variables = json!({
                    "orderId": "o-1", "order": {"id": "o-1", "items": [1, 2]}, "deadline": "2024-01-01T00:10:00Z",
                    "amount": 5, "key": "o-1", "refId": "o-1"
                });
                let create = Command::CreateInstance {
                    process_id: PROCESSES[*p].0.into(),
                    version: None,
                    variables: vars(variables),
                };
                if let Ok(engine::Accepted::Created { instance }) = h.run(create) {
                    instances.push(instance);
                }
            }
            Op::Complete(j) if !h.jobs.is_empty() => {
                let job = h.jobs.remove(j % h.jobs.len());
                let _ = h.run(Command::CompleteJob {
                    key: job.key,
                    variables: vars(json!({"remaining": 0, "done": true})),
                });
            }
            Op::Fail(j, retries, backoff) if !h.jobs.is_empty() => {
                let job = h.jobs.remove(j % h.jobs.len());
                let _ = h.run(Command::FailJob {
                    key: job.key,
                    retries: *retries,
                    backoff_ms: *backoff,
                    message: "x".into(),
                });
            }
            Op::Throw(j, c) if !h.jobs.is_empty() => {
                let job = h.jobs.remove(j % h.jobs.len());
                let _ = h.run(Command::ThrowError {
                    key: job.key,
                    code: CODES[*c].into(),
                    message: String::new(),
                    variables: vars(json!({})),
                });
            }
            Op::Publish(m, k, ttl) => {
                let _ = h.publish(
                    MESSAGES[*m],
                    KEYS[*k],
                    json!({"m": *m}),
                    if *ttl { 60_000 } else { 0 },
                );
            }
            Op::Advance(secs) => h.advance(SignedDuration::from_secs(*secs)),
            Op::Cancel(i) if !instances.is_empty() => {
                let _ = h.run(Command::CancelInstance {
                    instance: instances[i % instances.len()],
                });
            }
            Op::Resolve(i) => {
                let incidents = h.incidents();
                if !incidents.is_empty() {
                    let _ = h.run(Command::ResolveIncident {
                        key: incidents[i % incidents.len()].key,
                    });
                }
            }
            Op::SetVariables(i, approved) if !instances.is_empty() => {
                let scope = instances[i % instances.len()];
                let _ = h.run(Command::SetVariables {
                    scope,
                    variables: vars(json!({"approved": approved})),
                    local: false,
                });
            }
            _ => {}
        }
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_commands_never_panic_and_replay_rebuilds_state(ops in proptest::collection::vec(op(), 1..80)) {
        let h = run(&ops);
        let mut replayed = MemoryStore::new();
        replayed.transact(|kv| engine::replay(kv, &h.events)).unwrap();
        prop_assert!(h.store.dump() == replayed.dump(), "replaying {} events gave different state", h.events.len());
    }
}

#[test]
fn replay_of_a_long_mixed_history_matches() {
    let ops: Vec<Op> = (0..400)
        .map(|i| match i % 9 {
            0 | 1 => Op::Create(i % PROCESSES.len()),
            2..=4 => Op::Complete(i * 7),
            5 => Op::Publish(i % MESSAGES.len(), i % KEYS.len(), i % 2 == 0),
            6 => Op::Advance(61),
            7 => Op::Throw(i, i % CODES.len()),
            _ => Op::Resolve(i),
        })
        .collect();
    let h = run(&ops);
    assert!(
        h.events.len() > 1000,
        "a long history: {} events",
        h.events.len()
    );
    let mut replayed = MemoryStore::new();
    replayed
        .transact(|kv| engine::replay(kv, &h.events))
        .unwrap();
    assert!(h.store.dump() == replayed.dump());
}
