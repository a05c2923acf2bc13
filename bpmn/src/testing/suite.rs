//! The conformance suite: one or more scenarios per row of the coverage table, each asserting
//! the exact sequence of element records where order matters, the way Zeebe's engine tests do.
//! Every store implementation runs all of them (`conformance_suite!`).

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use jiff::SignedDuration;
use serde_json::json;

use super::Harness;
use crate::engine::{Accepted, Command, Event, IncidentKind, RejectionKind};
use crate::feel::Value;
use crate::store::{Error as StoreError, Store, Table};

pub const THREE_TASKS: &str = include_str!("fixtures/three-tasks.bpmn");
pub const TASKS: &str = include_str!("fixtures/tasks.bpmn");
pub const EXCLUSIVE: &str = include_str!("fixtures/exclusive.bpmn");
pub const EXCLUSIVE_NO_DEFAULT: &str = include_str!("fixtures/exclusive-no-default.bpmn");
pub const PARALLEL: &str = include_str!("fixtures/parallel.bpmn");
pub const EVENT_GATEWAY: &str = include_str!("fixtures/event-gateway.bpmn");
pub const MESSAGES: &str = include_str!("fixtures/messages.bpmn");
pub const MESSAGE_TWICE: &str = include_str!("fixtures/message-twice.bpmn");
pub const MESSAGE_START: &str = include_str!("fixtures/message-start.bpmn");
pub const RECEIVE_INSTANTIATE: &str = include_str!("fixtures/receive-instantiate.bpmn");
pub const TIMERS: &str = include_str!("fixtures/timers.bpmn");
pub const TIMER_START: &str = include_str!("fixtures/timer-start.bpmn");
pub const BOUNDARIES: &str = include_str!("fixtures/boundaries.bpmn");
pub const SUBPROCESS: &str = include_str!("fixtures/subprocess.bpmn");
pub const ERROR_END: &str = include_str!("fixtures/error-end.bpmn");
pub const TERMINATE: &str = include_str!("fixtures/terminate.bpmn");
pub const COMPENSATION: &str = include_str!("fixtures/compensation.bpmn");
pub const COMPENSATION_SUBPROCESS: &str = include_str!("fixtures/compensation-subprocess.bpmn");
pub const VARIABLES: &str = include_str!("fixtures/variables.bpmn");
pub const RETAIL_ORDER: &str = include_str!("fixtures/retail-order.bpmn");
pub const RETAIL_PAYMENT: &str = include_str!("fixtures/retail-payment.bpmn");
pub const LINK: &str = include_str!("fixtures/link.bpmn");
pub const ESCALATION: &str = include_str!("fixtures/escalation.bpmn");
pub const INCLUSIVE: &str = include_str!("fixtures/inclusive.bpmn");
pub const CRON: &str = include_str!("fixtures/cron.bpmn");
pub const CONDITIONAL: &str = include_str!("fixtures/conditional.bpmn");
pub const MODIFY: &str = include_str!("fixtures/modify.bpmn");
pub const MIGRATE_V1: &str = include_str!("fixtures/migrate-v1.bpmn");
pub const MIGRATE_V2: &str = include_str!("fixtures/migrate-v2.bpmn");
pub const MULTI_INSTANCE: &str = include_str!("fixtures/multi-instance.bpmn");
pub const EVENT_SUBPROCESS: &str = include_str!("fixtures/event-subprocess.bpmn");
pub const SIGNALS: &str = include_str!("fixtures/signals.bpmn");
pub const CALL_ACTIVITY: &str = include_str!("fixtures/call-activity.bpmn");

fn s(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Asserts that `part` appears contiguously in `trail`.
fn assert_contains(trail: &[String], part: &[&str]) {
    let part = s(part);
    assert!(
        trail.windows(part.len()).any(|w| w == part.as_slice()),
        "expected the records\n  {part:#?}\nin order in\n  {trail:#?}"
    );
}

fn count(trail: &[String], record: &str) -> usize {
    trail.iter().filter(|r| *r == record).count()
}

pub fn three_tasks_run_in_zeebe_record_order<S: Store>(h: &mut Harness<S>) {
    h.deploy(THREE_TASKS);
    let m = h.mark();
    let i = h.create("three-tasks", json!({}));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "ELEMENT_ACTIVATING three-tasks",
            "ELEMENT_ACTIVATED three-tasks",
            "ELEMENT_ACTIVATING start",
            "ELEMENT_ACTIVATED start",
            "ELEMENT_COMPLETING start",
            "ELEMENT_COMPLETED start",
            "SEQUENCE_FLOW_TAKEN f1",
            "ELEMENT_ACTIVATING t1",
            "ELEMENT_ACTIVATED t1",
            "JOB_CREATED t1",
        ])
    );
    h.complete("t1", json!({"a": 1}));
    h.complete("t2", json!({}));
    let m = h.mark();
    h.complete("t3", json!({}));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "JOB_COMPLETED",
            "ELEMENT_COMPLETING t3",
            "ELEMENT_COMPLETED t3",
            "SEQUENCE_FLOW_TAKEN f4",
            "ELEMENT_ACTIVATING end",
            "ELEMENT_ACTIVATED end",
            "ELEMENT_COMPLETING end",
            "ELEMENT_COMPLETED end",
            "ELEMENT_COMPLETING three-tasks",
            "ELEMENT_COMPLETED three-tasks",
        ])
    );
    assert!(!h.active(i), "the instance has ended");
    assert_eq!(h.process_variable(i, "a"), Some(json!(1)));
}

pub fn task_kinds_run_with_their_zeebe_behaviour<S: Store>(h: &mut Harness<S>) {
    h.deploy(TASKS);
    let i = h.create("tasks", json!({"amounts": [1, 2, 3]}));
    let send = h.job("send-mail");
    assert_eq!(send.retries, 5);
    assert_eq!(
        send.headers,
        vec![("template".to_owned(), "welcome".to_owned())]
    );
    assert_eq!(send.element_id, "send");
    assert_eq!(
        h.run(Command::CompleteJob {
            key: send.key,
            variables: super::vars(json!({}))
        }),
        Ok(Accepted::Done)
    );
    let user = h.job("io.camunda.zeebe:userTask");
    assert!(
        user.headers
            .contains(&("io.camunda.zeebe:assignee".to_owned(), "ada".to_owned()))
    );
    assert!(user.headers.contains(&(
        "io.camunda.zeebe:candidateGroups".to_owned(),
        "sales".to_owned()
    )));
    let m = h.mark();
    assert_eq!(
        h.run(Command::CompleteJob {
            key: user.key,
            variables: super::vars(json!({"approved": true}))
        }),
        Ok(Accepted::Done)
    );
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "ELEMENT_ACTIVATING compute",
            "ELEMENT_ACTIVATED compute",
            "ELEMENT_COMPLETING compute",
            "ELEMENT_COMPLETED compute",
            "SEQUENCE_FLOW_TAKEN f4",
            "ELEMENT_ACTIVATING manual",
            "ELEMENT_ACTIVATED manual",
            "ELEMENT_COMPLETING manual",
            "ELEMENT_COMPLETED manual",
            "SEQUENCE_FLOW_TAKEN f5",
            "ELEMENT_ACTIVATING undefined",
            "ELEMENT_ACTIVATED undefined",
            "ELEMENT_COMPLETING undefined",
            "ELEMENT_COMPLETED undefined",
        ],
    );
    assert_eq!(h.process_variable(i, "total"), Some(json!(12)));
    assert_eq!(h.process_variable(i, "approved"), Some(json!(true)));
    assert!(!h.active(i));
}

pub fn exclusive_gateway_takes_first_true_condition_or_default<S: Store>(h: &mut Harness<S>) {
    h.deploy(EXCLUSIVE);
    for (amount, flow, end) in [
        (5000, "big", "end-big"),
        (500, "medium", "end-medium"),
        (5, "small", "end-small"),
    ] {
        let m = h.mark();
        let i = h.create("exclusive", json!({"amount": amount}));
        assert_contains(
            &h.trail_since(m),
            &[
                "ELEMENT_ACTIVATING amount-ok",
                "ELEMENT_ACTIVATED amount-ok",
                "ELEMENT_COMPLETING amount-ok",
                "ELEMENT_COMPLETED amount-ok",
                &format!("SEQUENCE_FLOW_TAKEN {flow}"),
                &format!("ELEMENT_ACTIVATING {end}"),
            ],
        );
        assert_eq!(
            count(&h.trail_since(m), "SEQUENCE_FLOW_TAKEN big")
                + count(&h.trail_since(m), "SEQUENCE_FLOW_TAKEN medium")
                + count(&h.trail_since(m), "SEQUENCE_FLOW_TAKEN small"),
            1
        );
        assert!(!h.active(i));
    }
}

pub fn exclusive_gateway_without_match_raises_incident_until_resolved<S: Store>(
    h: &mut Harness<S>,
) {
    h.deploy(EXCLUSIVE_NO_DEFAULT);
    let m = h.mark();
    let i = h.create("exclusive-no-default", json!({}));
    let trail = h.trail_since(m);
    assert_eq!(
        trail[trail.len() - 2..],
        s(&["ELEMENT_ACTIVATING gw", "INCIDENT_CREATED gw"])
    );
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::Condition);
    assert_eq!(
        incidents[0].message,
        "expected at least one condition to evaluate to true, or to have a default flow (no variable found with name 'approved')"
    );
    assert!(h.active(i));
    // Fix the data, then retry.
    assert_eq!(
        h.run(Command::SetVariables {
            scope: i,
            variables: super::vars(json!({"approved": false})),
            local: false
        }),
        Ok(Accepted::Done)
    );
    let m = h.mark();
    assert_eq!(
        h.run(Command::ResolveIncident {
            key: incidents[0].key
        }),
        Ok(Accepted::Done)
    );
    assert_contains(
        &h.trail_since(m),
        &[
            "INCIDENT_RESOLVED",
            "ELEMENT_ACTIVATED gw",
            "ELEMENT_COMPLETING gw",
            "ELEMENT_COMPLETED gw",
            "SEQUENCE_FLOW_TAKEN to-no",
        ],
    );
    assert!(h.incidents().is_empty());
    assert!(!h.active(i));
}

pub fn parallel_gateway_forks_and_joins<S: Store>(h: &mut Harness<S>) {
    h.deploy(PARALLEL);
    let m = h.mark();
    let i = h.create("parallel", json!({}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_COMPLETED fork",
            "SEQUENCE_FLOW_TAKEN fa",
            "SEQUENCE_FLOW_TAKEN fb",
            "ELEMENT_ACTIVATING a",
            "ELEMENT_ACTIVATED a",
            "JOB_CREATED a",
            "ELEMENT_ACTIVATING b",
            "ELEMENT_ACTIVATED b",
            "JOB_CREATED b",
        ],
    );
    let m = h.mark();
    h.complete("b", json!({}));
    // One token waits at the join.
    assert_eq!(
        h.trail_since(m),
        s(&[
            "JOB_COMPLETED",
            "ELEMENT_COMPLETING b",
            "ELEMENT_COMPLETED b",
            "SEQUENCE_FLOW_TAKEN jb"
        ])
    );
    let m = h.mark();
    h.complete("a", json!({}));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "JOB_COMPLETED",
            "ELEMENT_COMPLETING a",
            "ELEMENT_COMPLETED a",
            "SEQUENCE_FLOW_TAKEN ja",
            "ELEMENT_ACTIVATING join",
            "ELEMENT_ACTIVATED join",
            "ELEMENT_COMPLETING join",
            "ELEMENT_COMPLETED join",
            "SEQUENCE_FLOW_TAKEN f9",
            "ELEMENT_ACTIVATING end",
            "ELEMENT_ACTIVATED end",
            "ELEMENT_COMPLETING end",
            "ELEMENT_COMPLETED end",
            "ELEMENT_COMPLETING parallel",
            "ELEMENT_COMPLETED parallel",
        ])
    );
    assert!(!h.active(i));
}

pub fn inclusive_gateway_forks_on_conditions_and_joins_what_was_forked<S: Store>(
    h: &mut Harness<S>,
) {
    h.deploy(INCLUSIVE);
    let m = h.mark();
    let i = h.create("inclusive", json!({"courses": ["pasta", "steak"]}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_ACTIVATING fork",
            "ELEMENT_ACTIVATED fork",
            "ELEMENT_COMPLETING fork",
            "ELEMENT_COMPLETED fork",
            "SEQUENCE_FLOW_TAKEN pasta-flow",
            "SEQUENCE_FLOW_TAKEN steak-flow",
            "ELEMENT_ACTIVATING pasta",
        ],
    );
    // The first branch waits at the join: the other can still arrive.
    let m = h.mark();
    h.complete("pasta", json!({}));
    let trail = h.trail_since(m);
    assert_eq!(
        trail.last().map(String::as_str),
        Some("SEQUENCE_FLOW_TAKEN j-pasta")
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING join"), 0);
    let m = h.mark();
    h.complete("steak", json!({}));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "JOB_COMPLETED",
            "ELEMENT_COMPLETING steak",
            "ELEMENT_COMPLETED steak",
            "SEQUENCE_FLOW_TAKEN j-steak",
            "ELEMENT_ACTIVATING join",
            "ELEMENT_ACTIVATED join",
            "ELEMENT_COMPLETING join",
            "ELEMENT_COMPLETED join",
            "SEQUENCE_FLOW_TAKEN f2",
            "ELEMENT_ACTIVATING end",
            "ELEMENT_ACTIVATED end",
            "ELEMENT_COMPLETING end",
            "ELEMENT_COMPLETED end",
            "ELEMENT_COMPLETING inclusive",
            "ELEMENT_COMPLETED inclusive",
        ])
    );
    assert!(!h.active(i));

    // No condition holds: the default flow, and the join passes at once.
    let m = h.mark();
    let j = h.create("inclusive", json!({"courses": []}));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &["ELEMENT_COMPLETED fork", "SEQUENCE_FLOW_TAKEN salad-flow"],
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING pasta"), 0);
    h.complete("salad", json!({}));
    assert!(!h.active(j));

    // A condition that cannot be evaluated is an incident on the fork.
    let k = h.create("inclusive", json!({}));
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::Condition);
    assert!(h.active(k));
}

pub fn inclusive_join_stops_waiting_for_a_branch_that_went_elsewhere<S: Store>(h: &mut Harness<S>) {
    h.deploy(INCLUSIVE);
    let i = h.create("inclusive-skip", json!({"skip": true}));
    let m = h.mark();
    h.complete("a", json!({}));
    assert_eq!(count(&h.trail_since(m), "ELEMENT_ACTIVATING s-join"), 0);
    // b leaves by the exclusive gateway to an end event: nothing can reach the join's other
    // flow any more, so it goes on with what arrived.
    let m = h.mark();
    h.complete("b", json!({}));
    assert_contains(
        &h.trail_since(m),
        &[
            "SEQUENCE_FLOW_TAKEN s-out",
            "ELEMENT_ACTIVATING s-skipped",
            "ELEMENT_ACTIVATED s-skipped",
            "ELEMENT_COMPLETING s-skipped",
            "ELEMENT_COMPLETED s-skipped",
            "ELEMENT_ACTIVATING s-join",
            "ELEMENT_ACTIVATED s-join",
            "ELEMENT_COMPLETING s-join",
            "ELEMENT_COMPLETED s-join",
            "SEQUENCE_FLOW_TAKEN s2",
        ],
    );
    assert!(!h.active(i));

    // Not skipped: the join waits for both and activates once.
    let j = h.create("inclusive-skip", json!({"skip": false}));
    h.complete("b", json!({}));
    let m = h.mark();
    h.complete("a", json!({}));
    let trail = h.trail_since(m);
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING s-join"), 1);
    assert!(!h.active(j));
}

pub fn event_based_gateway_takes_the_first_event<S: Store>(h: &mut Harness<S>) {
    h.deploy(EVENT_GATEWAY);
    let i = h.create("event-gateway", json!({"orderId": "o-1"}));
    let m = h.mark();
    assert!(
        h.publish("PaymentReceived", "o-1", json!({"paid": true}), 0)
            .is_ok()
    );
    assert_eq!(
        h.trail_since(m),
        s(&[
            "MESSAGE_CORRELATED",
            "ELEMENT_COMPLETING gw",
            "ELEMENT_COMPLETED gw",
            "SEQUENCE_FLOW_TAKEN to-paid",
            "ELEMENT_ACTIVATING paid",
            "ELEMENT_ACTIVATED paid",
            "ELEMENT_COMPLETING paid",
            "ELEMENT_COMPLETED paid",
            "SEQUENCE_FLOW_TAKEN f1",
            "ELEMENT_ACTIVATING end-paid",
            "ELEMENT_ACTIVATED end-paid",
            "ELEMENT_COMPLETING end-paid",
            "ELEMENT_COMPLETED end-paid",
            "ELEMENT_COMPLETING event-gateway",
            "ELEMENT_COMPLETED event-gateway",
        ])
    );
    assert_eq!(h.process_variable(i, "paid"), Some(json!(true)));
    let m = h.mark();
    h.advance(SignedDuration::from_hours(2));
    assert!(
        h.trail_since(m).is_empty(),
        "the timer was closed with the gateway"
    );
}

pub fn event_based_gateway_timer_wins_when_no_message_comes<S: Store>(h: &mut Harness<S>) {
    h.deploy(EVENT_GATEWAY);
    let i = h.create("event-gateway", json!({"orderId": "o-2"}));
    h.advance(SignedDuration::from_mins(59));
    assert!(h.active(i));
    let m = h.mark();
    h.advance(SignedDuration::from_mins(1));
    assert_contains(
        &h.trail_since(m),
        &[
            "TIMER_TRIGGERED",
            "ELEMENT_COMPLETING gw",
            "ELEMENT_COMPLETED gw",
            "SEQUENCE_FLOW_TAKEN to-timeout",
            "ELEMENT_ACTIVATING timeout",
        ],
    );
    assert!(!h.active(i));
    let m = h.mark();
    assert!(h.publish("PaymentReceived", "o-2", json!({}), 0).is_ok());
    assert!(
        h.trail_since(m).is_empty(),
        "the subscription was closed with the gateway"
    );
}

pub fn message_catch_receive_and_throw_events<S: Store>(h: &mut Harness<S>) {
    h.deploy(MESSAGES);
    let i = h.create("messages", json!({"orderId": "o-1"}));
    let m = h.mark();
    assert!(
        h.publish("PaymentReceived", "o-1", json!({"amount": 42}), 0)
            .is_ok()
    );
    assert_contains(
        &h.trail_since(m),
        &[
            "MESSAGE_CORRELATED",
            "ELEMENT_COMPLETING wait-paid",
            "ELEMENT_COMPLETED wait-paid",
            "SEQUENCE_FLOW_TAKEN f2",
            "ELEMENT_ACTIVATING wait-shipped",
            "ELEMENT_ACTIVATED wait-shipped",
        ],
    );
    // The output mapping decides what leaves the event.
    assert_eq!(h.process_variable(i, "paidAmount"), Some(json!(42)));
    assert_eq!(h.process_variable(i, "amount"), None);
    assert!(
        h.publish("GoodsShipped", "other-order", json!({}), 0)
            .is_ok()
    );
    assert!(h.active(i), "a message for another key does not correlate");
    assert!(
        h.publish("GoodsShipped", "o-1", json!({"carrier": "DHL"}), 0)
            .is_ok()
    );
    assert_eq!(h.process_variable(i, "carrier"), Some(json!("DHL")));
    assert!(!h.active(i));
    let names: Vec<(&str, &str)> = h
        .published
        .iter()
        .map(|p| (p.name.as_str(), p.correlation_key.as_str()))
        .collect();
    assert_eq!(names, [("OrderDone", "o-1"), ("OrderClosed", "o-1")]);
    let first = h.published[0].clone();
    assert_eq!(first.message_id, format!("flowmesh-{}", first.key));
    assert_eq!(
        first.variables.get("carrier").map(|v| v.to_json()),
        Some(json!("DHL"))
    );
    let outbox = h.store.read(|kv| h.engine.outbox(kv)).unwrap();
    assert_eq!(outbox.len(), 2, "publications stay until acknowledged");
    for p in h.published.clone() {
        assert_eq!(
            h.run(Command::AckPublication { key: p.key }),
            Ok(Accepted::Done)
        );
    }
    assert!(h.store.read(|kv| h.engine.outbox(kv)).unwrap().is_empty());
}

pub fn messages_are_buffered_until_their_ttl_and_deduplicated_by_id<S: Store>(h: &mut Harness<S>) {
    h.deploy(MESSAGES);
    let publish = |h: &mut Harness<S>, id: &str| {
        h.run(Command::Publish {
            name: "PaymentReceived".into(),
            correlation_key: "o-2".into(),
            variables: super::vars(json!({"amount": 7})),
            ttl_ms: 60_000,
            message_id: Some(id.into()),
        })
    };
    assert!(matches!(publish(h, "m-1"), Ok(Accepted::Published { .. })));
    let m = h.mark();
    let dup = publish(h, "m-1").unwrap_err();
    assert_eq!(dup.kind, RejectionKind::Duplicate);
    assert_eq!(h.mark(), m, "a rejected command emits nothing");
    let m = h.mark();
    let i = h.create("messages", json!({"orderId": "o-2"}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_ACTIVATING wait-paid",
            "ELEMENT_ACTIVATED wait-paid",
            "MESSAGE_CORRELATED",
            "ELEMENT_COMPLETING wait-paid",
        ],
    );
    assert_eq!(h.process_variable(i, "paidAmount"), Some(json!(7)));

    // A correlated message stays buffered for its time to live (another instance may take
    // it), then expires; then its id may be used again.
    assert!(h.publish("GoodsShipped", "o-2", json!({}), 10_000).is_ok());
    assert!(!h.active(i));
    let expired = |h: &Harness<S>| {
        h.events
            .iter()
            .filter(|e| matches!(e, Event::MessageExpired { .. }))
            .count()
    };
    h.advance(SignedDuration::from_secs(10));
    assert_eq!(expired(h), 1, "GoodsShipped lived 10 s");
    assert!(
        matches!(
            publish(h, "m-1").unwrap_err().kind,
            RejectionKind::Duplicate
        ),
        "m-1 is still buffered"
    );
    h.advance(SignedDuration::from_secs(50));
    assert_eq!(expired(h), 2, "PaymentReceived lived 60 s");
    assert!(matches!(publish(h, "m-1"), Ok(Accepted::Published { .. })));
}

pub fn message_correlates_at_most_once_per_instance<S: Store>(h: &mut Harness<S>) {
    h.deploy(MESSAGE_TWICE);
    let a = h.create("message-twice", json!({"key": "k"}));
    let b = h.create("message-twice", json!({"key": "k"}));
    let m = h.mark();
    assert!(h.publish("Ping", "k", json!({}), 0).is_ok());
    let trail = h.trail_since(m);
    // Both instances get it, each only once (catch-a, the first subscription).
    assert_eq!(count(&trail, "MESSAGE_CORRELATED"), 2);
    assert_eq!(count(&trail, "ELEMENT_COMPLETED catch-a"), 2);
    assert_eq!(count(&trail, "ELEMENT_COMPLETED catch-b"), 0);
    assert!(h.active(a) && h.active(b));
    assert!(h.publish("Ping", "k", json!({}), 60_000).is_ok());
    assert!(!h.active(a) && !h.active(b));
    // Buffered, it would correlate to a new instance, once.
    let c = h.create("message-twice", json!({"key": "k"}));
    let trail = h.trail();
    assert_eq!(count(&trail, "ELEMENT_COMPLETED catch-a"), 3);
    assert!(
        h.active(c),
        "the buffered message reached one of c's two events only"
    );
}

pub fn message_start_allows_one_active_instance_per_correlation_key<S: Store>(h: &mut Harness<S>) {
    h.deploy(MESSAGE_START);
    let started = |h: &Harness<S>| count(&h.trail(), "ELEMENT_ACTIVATING message-start");
    assert!(h.publish("OrderPlaced", "c-1", json!({"n": 1}), 0).is_ok());
    assert_eq!(started(h), 1);
    let job = h.job("handle");
    assert_eq!(
        job.variables.get("n").map(|v| v.to_json()),
        Some(json!(1)),
        "message variables are on the instance"
    );
    assert!(
        h.publish("OrderPlaced", "c-1", json!({"n": 2}), 60_000)
            .is_ok()
    );
    assert_eq!(started(h), 1, "one instance per correlation key at a time");
    assert!(h.publish("OrderPlaced", "c-2", json!({"n": 3}), 0).is_ok());
    assert_eq!(started(h), 2);
    assert_eq!(
        h.run(Command::CompleteJob {
            key: job.key,
            variables: super::vars(json!({}))
        }),
        Ok(Accepted::Done)
    );
    assert_eq!(
        started(h),
        3,
        "the buffered message starts the next instance once the first ended"
    );
    let next = h.job("handle");
    let next = if next.variables.get("n").map(|v| v.to_json()) == Some(json!(3)) {
        h.job("handle")
    } else {
        next
    };
    assert_eq!(next.variables.get("n").map(|v| v.to_json()), Some(json!(2)));
    assert!(h.publish("OrderPlaced", "", json!({}), 0).is_ok());
    assert!(h.publish("OrderPlaced", "", json!({}), 0).is_ok());
    assert_eq!(
        started(h),
        5,
        "without a correlation key every message starts an instance"
    );
}

pub fn receive_task_with_instantiate_starts_an_instance<S: Store>(h: &mut Harness<S>) {
    h.deploy(RECEIVE_INSTANTIATE);
    let m = h.mark();
    assert!(h.publish("OrderReceived", "", json!({"id": 7}), 0).is_ok());
    assert_eq!(
        h.trail_since(m),
        s(&[
            "MESSAGE_CORRELATED",
            "ELEMENT_ACTIVATING receive-instantiate",
            "ELEMENT_ACTIVATED receive-instantiate",
            "ELEMENT_ACTIVATING receive-order",
            "ELEMENT_ACTIVATED receive-order",
            "ELEMENT_COMPLETING receive-order",
            "ELEMENT_COMPLETED receive-order",
            "SEQUENCE_FLOW_TAKEN f1",
            "ELEMENT_ACTIVATING end",
            "ELEMENT_ACTIVATED end",
            "ELEMENT_COMPLETING end",
            "ELEMENT_COMPLETED end",
            "ELEMENT_COMPLETING receive-instantiate",
            "ELEMENT_COMPLETED receive-instantiate",
        ])
    );
}

pub fn timer_catch_events_wait_for_duration_and_date<S: Store>(h: &mut Harness<S>) {
    h.deploy(TIMERS);
    let i = h.create("timers", json!({"deadline": "2024-01-01T01:00:00Z"}));
    h.advance(SignedDuration::from_secs(9));
    assert!(
        !h.trail()
            .contains(&"ELEMENT_COMPLETED wait-duration".to_owned())
    );
    let m = h.mark();
    h.advance(SignedDuration::from_secs(1));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "TIMER_TRIGGERED",
            "ELEMENT_COMPLETING wait-duration",
            "ELEMENT_COMPLETED wait-duration",
            "SEQUENCE_FLOW_TAKEN f2",
            "ELEMENT_ACTIVATING wait-date",
            "ELEMENT_ACTIVATED wait-date",
        ])
    );
    let due = h.store.read(|kv| h.engine.next_due(kv)).unwrap();
    assert_eq!(due, Some("2024-01-01T01:00:00Z".parse().unwrap()));
    h.advance(SignedDuration::from_mins(59) + SignedDuration::from_secs(49));
    assert!(h.active(i));
    h.advance(SignedDuration::from_secs(1));
    assert!(!h.active(i));
}

pub fn timer_start_events_fire_by_date_and_cycle<S: Store>(h: &mut Harness<S>) {
    h.deploy(TIMER_START);
    let started = |h: &Harness<S>, id: &str| count(&h.trail(), &format!("ELEMENT_ACTIVATING {id}"));
    for _ in 0..5 {
        h.advance(SignedDuration::from_mins(1));
    }
    assert_eq!(started(h, "timer-start-cycle"), 3, "R3 fires three times");
    assert_eq!(started(h, "timer-start-date"), 0);
    h.now = "2030-01-01T08:00:00Z".parse().unwrap();
    assert_eq!(h.run(Command::Tick), Ok(Accepted::Done));
    assert_eq!(started(h, "timer-start-date"), 1);
    h.advance(SignedDuration::from_hours(24));
    assert_eq!(started(h, "timer-start-date"), 1, "a date fires once");
}

pub fn timer_cycles_as_cron_fire_when_the_cron_says<S: Store>(h: &mut Harness<S>) {
    // The harness starts on Monday 2024-01-01 at 00:00 UTC.
    h.deploy(CRON);
    let i = h.create("cron-reminder", json!({"schedule": "0 0 9 * * MON-FRI"}));
    let m = h.mark();
    h.advance(SignedDuration::from_hours(8));
    assert_eq!(count(&h.trail_since(m), "ELEMENT_COMPLETED reminded"), 0);
    assert_eq!(
        count(&h.trail_since(m), "ELEMENT_COMPLETED every-morning"),
        1
    );
    // A day at a time, for a week: nine o'clock on each weekday, none on the weekend.
    for _ in 0..7 {
        h.advance(SignedDuration::from_hours(24));
    }
    let trail = h.trail_since(m);
    assert_eq!(count(&trail, "ELEMENT_COMPLETED reminded"), 5);
    assert_eq!(count(&trail, "ELEMENT_COMPLETED every-morning"), 8);
    assert_contains(
        &trail,
        &[
            "TIMER_TRIGGERED",
            "ELEMENT_ACTIVATING weekday-nine",
            "ELEMENT_ACTIVATED weekday-nine",
            "ELEMENT_COMPLETING weekday-nine",
            "ELEMENT_COMPLETED weekday-nine",
            "SEQUENCE_FLOW_TAKEN r3",
        ],
    );
    assert!(h.active(i), "the reminders do not interrupt the review");
    h.complete("review", json!({}));
    assert!(!h.active(i));
    // The review's timer went with it.
    let m = h.mark();
    h.advance(SignedDuration::from_hours(24));
    assert_eq!(count(&h.trail_since(m), "ELEMENT_COMPLETED reminded"), 0);
}

fn set(h: &mut Harness<impl Store>, scope: u64, vars: serde_json::Value) {
    assert_eq!(
        h.run(Command::SetVariables {
            scope,
            variables: super::vars(vars),
            local: false,
        }),
        Ok(Accepted::Done)
    );
}

pub fn conditional_catch_waits_until_its_condition_holds<S: Store>(h: &mut Harness<S>) {
    h.deploy(CONDITIONAL);
    // Already true on arrival: passes at once.
    let m = h.mark();
    let i = h.create("conditional-catch", json!({"ready": true}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_ACTIVATING wait-ready",
            "ELEMENT_ACTIVATED wait-ready",
            "ELEMENT_COMPLETING wait-ready",
            "ELEMENT_COMPLETED wait-ready",
            "SEQUENCE_FLOW_TAKEN c4",
        ],
    );
    h.complete("prepare", json!({}));
    assert!(!h.active(i));

    // False on arrival: waits; a job's result that makes it true lets it go on.
    let j = h.create("conditional-catch", json!({"ready": false}));
    let m = h.mark();
    h.complete("prepare", json!({"ready": false}));
    assert_eq!(count(&h.trail_since(m), "ELEMENT_COMPLETED wait-ready"), 0);
    assert!(h.active(j));
    let m = h.mark();
    set(h, j, json!({"ready": true}));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "ELEMENT_COMPLETING wait-ready",
            "ELEMENT_COMPLETED wait-ready",
            "SEQUENCE_FLOW_TAKEN c4",
            "ELEMENT_ACTIVATING c-ready",
            "ELEMENT_ACTIVATED c-ready",
            "ELEMENT_COMPLETING c-ready",
            "ELEMENT_COMPLETED c-ready",
            "ELEMENT_COMPLETING conditional-catch",
            "ELEMENT_COMPLETED conditional-catch",
        ])
    );
    assert!(!h.active(j));
}

pub fn conditional_boundaries_fire_when_variables_make_them_true<S: Store>(h: &mut Harness<S>) {
    h.deploy(CONDITIONAL);
    let i = h.create(
        "conditional-boundary",
        json!({"progress": 0, "cancelled": false}),
    );
    let m = h.mark();
    set(h, i, json!({"progress": 10}));
    assert!(h.trail_since(m).is_empty(), "nothing holds yet");
    // Non-interrupting: the task goes on.
    let m = h.mark();
    set(h, i, json!({"progress": 60}));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "ELEMENT_ACTIVATING halfway",
            "ELEMENT_ACTIVATED halfway",
            "ELEMENT_COMPLETING halfway",
            "ELEMENT_COMPLETED halfway",
            "SEQUENCE_FLOW_TAKEN b3",
            "ELEMENT_ACTIVATING b-half",
            "ELEMENT_ACTIVATED b-half",
            "ELEMENT_COMPLETING b-half",
            "ELEMENT_COMPLETED b-half",
        ])
    );
    // Interrupting: the task ends. The non-interrupting one, still true after this change
    // of variables, fires again first (model order), as Camunda 7's does.
    let m = h.mark();
    set(h, i, json!({"cancelled": true}));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "SEQUENCE_FLOW_TAKEN b3",
            "ELEMENT_TERMINATING work",
            "ELEMENT_TERMINATED work",
            "ELEMENT_ACTIVATING called-off",
        ],
    );
    assert_eq!(count(&trail, "ELEMENT_COMPLETED halfway"), 1);
    assert_eq!(count(&trail, "ELEMENT_COMPLETED b-stopped"), 1);
    assert!(!h.active(i));
}

pub fn interrupting_timer_boundary_terminates_the_task<S: Store>(h: &mut Harness<S>) {
    h.deploy(BOUNDARIES);
    let i = h.create("boundaries", json!({"orderId": "o-1"}));
    let work = h.job("work");
    let m = h.mark();
    for _ in 0..5 {
        h.advance(SignedDuration::from_mins(1));
    }
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "TIMER_TRIGGERED",
            "ELEMENT_TERMINATING work",
            "ELEMENT_TERMINATED work",
            "ELEMENT_ACTIVATING timeout",
            "ELEMENT_ACTIVATED timeout",
            "ELEMENT_COMPLETING timeout",
            "ELEMENT_COMPLETED timeout",
            "SEQUENCE_FLOW_TAKEN f3",
        ],
    );
    assert!(
        h.events
            .iter()
            .any(|e| *e == Event::JobCanceled { key: work.key })
    );
    let late = h
        .run(Command::CompleteJob {
            key: work.key,
            variables: super::vars(json!({})),
        })
        .unwrap_err();
    assert_eq!(late.kind, RejectionKind::NotFound);
    // The two reminders (non-interrupting) still run.
    h.complete("remind", json!({}));
    assert!(h.active(i));
    h.complete("remind", json!({}));
    assert!(!h.active(i));
}

pub fn non_interrupting_timer_cycle_boundary_fires_repeatedly<S: Store>(h: &mut Harness<S>) {
    h.deploy(BOUNDARIES);
    let i = h.create("boundaries", json!({"orderId": "o-1"}));
    let m = h.mark();
    h.advance(SignedDuration::from_mins(1));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "TIMER_TRIGGERED",
            "ELEMENT_ACTIVATING reminder",
            "ELEMENT_ACTIVATED reminder",
            "ELEMENT_COMPLETING reminder",
            "ELEMENT_COMPLETED reminder",
            "SEQUENCE_FLOW_TAKEN f4",
            "ELEMENT_ACTIVATING remind",
            "ELEMENT_ACTIVATED remind",
            "JOB_CREATED remind",
        ])
    );
    h.advance(SignedDuration::from_mins(1));
    h.advance(SignedDuration::from_mins(1));
    assert_eq!(
        count(&h.trail(), "ELEMENT_ACTIVATING reminder"),
        2,
        "R2: twice, then no more"
    );
    h.complete("work", json!({}));
    h.complete("remind", json!({}));
    assert!(h.active(i), "one reminder task still runs");
    h.complete("remind", json!({}));
    assert!(!h.active(i));
}

pub fn message_boundaries_interrupt_or_not<S: Store>(h: &mut Harness<S>) {
    h.deploy(BOUNDARIES);
    let i = h.create("boundaries", json!({"orderId": "o-7"}));
    let work = h.job("work");
    for _ in 0..2 {
        let m = h.mark();
        assert!(h.publish("OrderUpdated", "o-7", json!({}), 0).is_ok());
        assert_contains(
            &h.trail_since(m),
            &[
                "MESSAGE_CORRELATED",
                "ELEMENT_ACTIVATING updated",
                "ELEMENT_ACTIVATED updated",
                "ELEMENT_COMPLETING updated",
                "ELEMENT_COMPLETED updated",
                "SEQUENCE_FLOW_TAKEN f7",
            ],
        );
        assert!(
            h.active(work.element_instance),
            "a non-interrupting event leaves the task running"
        );
    }
    let m = h.mark();
    assert!(
        h.publish("OrderCancelled", "o-7", json!({"reason": "customer"}), 0)
            .is_ok()
    );
    assert_contains(
        &h.trail_since(m),
        &[
            "MESSAGE_CORRELATED",
            "ELEMENT_TERMINATING work",
            "ELEMENT_TERMINATED work",
            "ELEMENT_ACTIVATING cancelled",
        ],
    );
    assert_eq!(h.process_variable(i, "reason"), Some(json!("customer")));
    assert!(!h.active(i));
}

pub fn error_boundary_catches_by_code_before_catch_all<S: Store>(h: &mut Harness<S>) {
    h.deploy(BOUNDARIES);
    for (code, boundary) in [("REJECTED", "rejected"), ("SOMETHING_ELSE", "any-error")] {
        let i = h.create("boundaries", json!({"orderId": code}));
        let work = h.job("work");
        let m = h.mark();
        let thrown = h.run(Command::ThrowError {
            key: work.key,
            code: code.into(),
            message: "nope".into(),
            variables: super::vars(json!({"why": code})),
        });
        assert_eq!(thrown, Ok(Accepted::Done));
        assert_contains(
            &h.trail_since(m),
            &[
                "ELEMENT_TERMINATING work",
                "ELEMENT_TERMINATED work",
                &format!("ELEMENT_ACTIVATING {boundary}"),
            ],
        );
        assert_eq!(h.process_variable(i, "why"), Some(json!(code)));
        assert!(!h.active(i));
    }
}

pub fn uncaught_job_error_raises_incident<S: Store>(h: &mut Harness<S>) {
    h.deploy(THREE_TASKS);
    let i = h.create("three-tasks", json!({}));
    let t1 = h.job("t1");
    let thrown = h.run(Command::ThrowError {
        key: t1.key,
        code: "NOPE".into(),
        message: "bad".into(),
        variables: super::vars(json!({})),
    });
    assert_eq!(thrown, Ok(Accepted::Done));
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::UnhandledError);
    assert_eq!(incidents[0].job, Some(t1.key));
    assert!(
        incidents[0].message.contains("'NOPE'"),
        "{}",
        incidents[0].message
    );
    let blocked = h
        .run(Command::CompleteJob {
            key: t1.key,
            variables: super::vars(json!({})),
        })
        .unwrap_err();
    assert_eq!(blocked.kind, RejectionKind::InvalidState);
    assert_eq!(
        h.run(Command::ResolveIncident {
            key: incidents[0].key
        }),
        Ok(Accepted::Done)
    );
    h.complete("t1", json!({}));
    h.complete("t2", json!({}));
    h.complete("t3", json!({}));
    assert!(!h.active(i));
}

pub fn embedded_subprocess_scopes_variables_and_catches_errors<S: Store>(h: &mut Harness<S>) {
    h.deploy(SUBPROCESS);
    let m = h.mark();
    let i = h.create("subprocess", json!({"order": {"id": "o-9"}}));
    assert_contains(
        &h.trail_since(m),
        &[
            "SEQUENCE_FLOW_TAKEN f1",
            "ELEMENT_ACTIVATING sub",
            "ELEMENT_ACTIVATED sub",
            "ELEMENT_ACTIVATING sub-start",
            "ELEMENT_ACTIVATED sub-start",
            "ELEMENT_COMPLETING sub-start",
            "ELEMENT_COMPLETED sub-start",
            "SEQUENCE_FLOW_TAKEN s1",
            "ELEMENT_ACTIVATING inner",
        ],
    );
    let inner = h.complete("inner", json!({"localResult": "ok"}));
    assert_eq!(
        inner.variables.get("localId").map(|v| v.to_json()),
        Some(json!("o-9"))
    );
    assert_eq!(
        h.process_variable(i, "localId"),
        None,
        "input mappings stay local to the subprocess"
    );
    assert_eq!(h.process_variable(i, "result"), Some(json!("ok")));
    assert!(!h.active(i));

    let j = h.create("subprocess", json!({"order": {"id": "o-10"}}));
    let inner = h.job("inner");
    let m = h.mark();
    let thrown = h.run(Command::ThrowError {
        key: inner.key,
        code: "FAILED".into(),
        message: String::new(),
        variables: super::vars(json!({})),
    });
    assert_eq!(thrown, Ok(Accepted::Done));
    assert_eq!(
        h.trail_since(m)[..6],
        s(&[
            "ELEMENT_TERMINATING sub",
            "ELEMENT_TERMINATING inner",
            "ELEMENT_TERMINATED inner",
            "ELEMENT_TERMINATED sub",
            "ELEMENT_ACTIVATING sub-failed",
            "ELEMENT_ACTIVATED sub-failed",
        ])
    );
    assert!(!h.active(j));
}

pub fn error_end_event_is_caught_by_enclosing_boundary<S: Store>(h: &mut Harness<S>) {
    h.deploy(ERROR_END);
    let m = h.mark();
    let i = h.create("error-end", json!({}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_ACTIVATING throw",
            "ELEMENT_ACTIVATED throw",
            "ELEMENT_TERMINATING sub",
            "ELEMENT_TERMINATING throw",
            "ELEMENT_TERMINATED throw",
            "ELEMENT_TERMINATED sub",
            "ELEMENT_ACTIVATING caught",
            "ELEMENT_ACTIVATED caught",
            "ELEMENT_COMPLETING caught",
            "ELEMENT_COMPLETED caught",
            "SEQUENCE_FLOW_TAKEN f3",
        ],
    );
    assert!(!h.active(i));
}

pub fn uncaught_error_end_event_raises_incident<S: Store>(h: &mut Harness<S>) {
    h.deploy(ERROR_END);
    let i = h.create("error-uncaught", json!({}));
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::UnhandledError);
    assert_eq!(
        h.run(Command::ResolveIncident {
            key: incidents[0].key
        }),
        Ok(Accepted::Done)
    );
    let again = h.incidents();
    assert_eq!(again.len(), 1, "still uncaught: a new incident");
    assert_ne!(again[0].key, incidents[0].key);
    let m = h.mark();
    assert_eq!(
        h.run(Command::CancelInstance { instance: i }),
        Ok(Accepted::Done)
    );
    assert_eq!(
        h.trail_since(m),
        s(&[
            "ELEMENT_TERMINATING error-uncaught",
            "ELEMENT_TERMINATING u-throw",
            "INCIDENT_RESOLVED",
            "ELEMENT_TERMINATED u-throw",
            "ELEMENT_TERMINATED error-uncaught",
        ])
    );
    assert!(h.incidents().is_empty());
}

pub fn link_throw_goes_on_at_its_catch_event<S: Store>(h: &mut Harness<S>) {
    h.deploy(LINK);
    let m = h.mark();
    let i = h.create("link", json!({}));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "SEQUENCE_FLOW_TAKEN f1",
            "ELEMENT_ACTIVATING go-to-b",
            "ELEMENT_ACTIVATED go-to-b",
            "ELEMENT_COMPLETING go-to-b",
            "ELEMENT_COMPLETED go-to-b",
            "ELEMENT_ACTIVATING from-b",
            "ELEMENT_ACTIVATED from-b",
            "ELEMENT_COMPLETING from-b",
            "ELEMENT_COMPLETED from-b",
            "SEQUENCE_FLOW_TAKEN f2",
            "ELEMENT_ACTIVATING work",
        ],
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING from-a"), 0);
    h.complete("work", json!({}));
    assert!(!h.active(i));
}

pub fn non_interrupting_escalation_is_caught_and_both_paths_go_on<S: Store>(h: &mut Harness<S>) {
    h.deploy(ESCALATION);
    let m = h.mark();
    let i = h.create("escalation-non-interrupting", json!({}));
    let trail = h.trail_since(m);
    // The thrower goes on first; the boundary event's token follows (a code before catch-all).
    assert_contains(
        &trail,
        &[
            "ELEMENT_ACTIVATING n-throw",
            "ELEMENT_ACTIVATED n-throw",
            "ELEMENT_COMPLETING n-throw",
            "ELEMENT_COMPLETED n-throw",
            "SEQUENCE_FLOW_TAKEN n2",
            "ELEMENT_ACTIVATING n-caught",
            "ELEMENT_ACTIVATED n-caught",
            "ELEMENT_COMPLETING n-caught",
            "ELEMENT_COMPLETED n-caught",
            "SEQUENCE_FLOW_TAKEN n6",
            "ELEMENT_ACTIVATING n-work",
        ],
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING n-catch-all"), 0);
    assert_eq!(count(&trail, "ELEMENT_COMPLETED n-escalated"), 1);
    assert!(h.active(i), "the subprocess goes on");
    let m = h.mark();
    h.complete("work", json!({}));
    assert_contains(
        &h.trail_since(m),
        &["ELEMENT_COMPLETED n-sub", "SEQUENCE_FLOW_TAKEN n5"],
    );
    assert!(!h.active(i));
}

pub fn interrupting_escalation_ends_the_activity_and_uncaught_goes_on<S: Store>(
    h: &mut Harness<S>,
) {
    h.deploy(ESCALATION);
    let m = h.mark();
    let i = h.create("escalation-interrupting", json!({"code": "LATE"}));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "ELEMENT_ACTIVATING i-throw",
            "ELEMENT_ACTIVATED i-throw",
            "ELEMENT_TERMINATING i-sub",
            "ELEMENT_TERMINATING i-throw",
            "ELEMENT_TERMINATED i-throw",
            "ELEMENT_TERMINATED i-sub",
            "ELEMENT_ACTIVATING i-caught",
            "ELEMENT_ACTIVATED i-caught",
            "ELEMENT_COMPLETING i-caught",
            "ELEMENT_COMPLETED i-caught",
            "SEQUENCE_FLOW_TAKEN i4",
        ],
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING i-end"), 0);
    assert!(!h.active(i));

    // A code nobody catches: no incident, the end event just ends its path.
    let m = h.mark();
    let j = h.create("escalation-interrupting", json!({"code": "OTHER"}));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "ELEMENT_ACTIVATING i-throw",
            "ELEMENT_ACTIVATED i-throw",
            "ELEMENT_COMPLETING i-throw",
            "ELEMENT_COMPLETED i-throw",
            "ELEMENT_COMPLETING i-sub",
            "ELEMENT_COMPLETED i-sub",
            "SEQUENCE_FLOW_TAKEN i3",
        ],
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING i-caught"), 0);
    assert!(h.incidents().is_empty());
    assert!(!h.active(j));

    // A code expression that cannot be evaluated is an incident on the thrower.
    let k = h.create("escalation-interrupting", json!({}));
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::Expression);
    assert!(h.active(k));
}

pub fn terminate_end_event_ends_the_instance<S: Store>(h: &mut Harness<S>) {
    h.deploy(TERMINATE);
    let m = h.mark();
    let i = h.create("terminate", json!({}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_ACTIVATING kill",
            "ELEMENT_ACTIVATED kill",
            "ELEMENT_COMPLETING kill",
            "ELEMENT_TERMINATING slow",
            "ELEMENT_TERMINATED slow",
            "ELEMENT_COMPLETED kill",
            "ELEMENT_COMPLETING terminate",
            "ELEMENT_COMPLETED terminate",
        ],
    );
    assert!(!h.active(i));
    let slow = h.job("slow");
    let late = h
        .run(Command::CompleteJob {
            key: slow.key,
            variables: super::vars(json!({})),
        })
        .unwrap_err();
    assert_eq!(late.kind, RejectionKind::NotFound);
}

pub fn compensation_runs_handlers_of_completed_activities<S: Store>(h: &mut Harness<S>) {
    h.deploy(COMPENSATION);
    let i = h.create("compensation", json!({}));
    h.complete("charge", json!({}));
    let m = h.mark();
    h.complete("reserve", json!({}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_ACTIVATING undo-charge",
            "ELEMENT_ACTIVATED undo-charge",
            "ELEMENT_ACTIVATING charge-comp",
            "ELEMENT_ACTIVATED charge-comp",
            "ELEMENT_COMPLETING charge-comp",
            "ELEMENT_COMPLETED charge-comp",
            "ELEMENT_ACTIVATING refund",
            "ELEMENT_ACTIVATED refund",
            "JOB_CREATED refund",
        ],
    );
    assert!(
        !h.trail_since(m).iter().any(|r| r.ends_with(" release")),
        "activityRef names one activity"
    );
    let m = h.mark();
    h.complete("refund", json!({}));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "ELEMENT_COMPLETED refund",
            "ELEMENT_COMPLETING undo-charge",
            "ELEMENT_COMPLETED undo-charge",
            "SEQUENCE_FLOW_TAKEN f4",
            "ELEMENT_ACTIVATING undo-all",
        ],
    );
    assert_contains(
        &trail,
        &[
            "ELEMENT_ACTIVATING release",
            "ELEMENT_ACTIVATED release",
            "JOB_CREATED release",
        ],
    );
    assert!(
        !trail.contains(&"ELEMENT_ACTIVATING refund".to_owned()),
        "charge was compensated already"
    );
    assert!(h.active(i), "the end event waits for its handlers");
    let m = h.mark();
    h.complete("release", json!({}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_COMPLETED release",
            "ELEMENT_COMPLETING undo-all",
            "ELEMENT_COMPLETED undo-all",
            "ELEMENT_COMPLETING compensation",
            "ELEMENT_COMPLETED compensation",
        ],
    );
    assert!(!h.active(i));
}

pub fn compensation_reaches_into_completed_subprocesses<S: Store>(h: &mut Harness<S>) {
    h.deploy(COMPENSATION_SUBPROCESS);
    let i = h.create("compensation-subprocess", json!({}));
    let m = h.mark();
    h.complete("book", json!({}));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "ELEMENT_COMPLETED trip",
            "SEQUENCE_FLOW_TAKEN f2",
            "ELEMENT_ACTIVATING undo",
            "ELEMENT_ACTIVATED undo",
        ],
    );
    assert_contains(
        &trail,
        &[
            "ELEMENT_ACTIVATING book-comp",
            "ELEMENT_ACTIVATED book-comp",
            "ELEMENT_COMPLETING book-comp",
            "ELEMENT_COMPLETED book-comp",
            "ELEMENT_ACTIVATING cancel-booking",
            "ELEMENT_ACTIVATED cancel-booking",
            "JOB_CREATED cancel-booking",
        ],
    );
    h.complete("cancel-booking", json!({}));
    assert!(!h.active(i));
}

pub fn variables_follow_zeebe_scope_and_mapping_rules<S: Store>(h: &mut Harness<S>) {
    h.deploy(VARIABLES);
    let i = h.create(
        "variables",
        json!({"order": {"id": "o-1", "items": [1, 2, 3]}}),
    );
    let price = h.job("price");
    let v = |name: &str| price.variables.get(name).map(|v| v.to_json());
    assert_eq!(v("lines"), Some(json!([1, 2, 3])));
    assert_eq!(
        v("request"),
        Some(json!({"count": 3, "note": "static text"}))
    );
    assert_eq!(
        h.run(Command::CompleteJob {
            key: price.key,
            variables: super::vars(json!({"result": {"total": 99.5, "currency": "EUR"}}))
        }),
        Ok(Accepted::Done)
    );
    let ship = h.job("ship");
    let v = |name: &str| ship.variables.get(name).map(|v| v.to_json());
    assert_eq!(
        v("order"),
        Some(json!({"id": "o-1", "items": [1, 2, 3], "total": 99.5})),
        "a nested target keeps siblings"
    );
    assert_eq!(v("currency"), Some(json!("EUR")));
    assert_eq!(
        v("result"),
        None,
        "with output mappings only mapped values leave the task"
    );
    assert_eq!(v("lines"), None, "input mappings are local to the task");
    assert_eq!(
        h.run(Command::CompleteJob {
            key: ship.key,
            variables: super::vars(json!({"tracking": "T-1", "currency": "USD"}))
        }),
        Ok(Accepted::Done)
    );
    assert_eq!(h.process_variable(i, "tracking"), Some(json!("T-1")));
    assert_eq!(
        h.process_variable(i, "currency"),
        Some(json!("USD")),
        "an existing variable is updated"
    );
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, Event::VariableUpdated { name, .. } if name == "currency"))
    );
}

pub fn failed_jobs_retry_with_backoff_then_raise_incident<S: Store>(h: &mut Harness<S>) {
    h.deploy(THREE_TASKS);
    let i = h.create("three-tasks", json!({}));
    let t1 = h.job("t1");
    assert_eq!(t1.retries, 3);
    let fail = |h: &mut Harness<S>, key, retries, backoff_ms| {
        h.run(Command::FailJob {
            key,
            retries,
            backoff_ms,
            message: format!("boom {retries}"),
        })
    };
    assert_eq!(fail(h, t1.key, 2, 0), Ok(Accepted::Done));
    assert_eq!(
        h.job("t1").retries,
        2,
        "no backoff: performed again at once"
    );
    assert_eq!(fail(h, t1.key, 1, 10_000), Ok(Accepted::Done));
    assert!(h.jobs.is_empty(), "waits for its backoff");
    h.advance(SignedDuration::from_secs(9));
    assert!(h.jobs.is_empty());
    h.advance(SignedDuration::from_secs(1));
    assert_eq!(h.job("t1").retries, 1);
    assert_eq!(fail(h, t1.key, 0, 0), Ok(Accepted::Done));
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::JobNoRetries);
    assert_eq!(incidents[0].message, "boom 0");
    assert!(h.jobs.is_empty());
    assert_eq!(
        h.run(Command::ResolveIncident {
            key: incidents[0].key
        }),
        Ok(Accepted::Done)
    );
    assert_eq!(h.job("t1").retries, 1, "resolving gives the job a retry");
    assert!(h.incidents().is_empty());
    assert_eq!(
        h.run(Command::CompleteJob {
            key: t1.key,
            variables: super::vars(json!({}))
        }),
        Ok(Accepted::Done)
    );
    h.complete("t2", json!({}));
    h.complete("t3", json!({}));
    assert!(!h.active(i));
}

pub fn new_deployments_make_versions_and_keep_running_instances<S: Store>(h: &mut Harness<S>) {
    let v1 = h.deploy(THREE_TASKS);
    assert_eq!((v1[0].version, v1[0].duplicate), (1, false));
    let old = h.create("three-tasks", json!({}));
    let again = h.deploy(THREE_TASKS);
    assert_eq!(
        (again[0].version, again[0].duplicate, again[0].key),
        (1, true, v1[0].key)
    );
    let v2 = h.deploy(&THREE_TASKS.replace("type=\"t3\"", "type=\"t3-v2\""));
    assert_eq!((v2[0].version, v2[0].duplicate), (2, false));
    let new = h.create("three-tasks", json!({}));
    h.complete("t1", json!({}));
    h.complete("t1", json!({}));
    h.complete("t2", json!({}));
    h.complete("t2", json!({}));
    let old_t3 = h.job("t3");
    assert_eq!(old_t3.instance, old);
    assert_eq!(old_t3.version, 1);
    let new_t3 = h.job("t3-v2");
    assert_eq!((new_t3.instance, new_t3.version), (new, 2));
    let pinned = h.run(Command::CreateInstance {
        process_id: "three-tasks".into(),
        version: Some(1),
        variables: super::vars(json!({})),
    });
    assert!(matches!(pinned, Ok(Accepted::Created { .. })));
    let missing = h
        .run(Command::CreateInstance {
            process_id: "three-tasks".into(),
            version: Some(9),
            variables: super::vars(json!({})),
        })
        .unwrap_err();
    assert_eq!(missing.kind, RejectionKind::NotFound);
    assert!(
        missing.message.contains("deployed versions: 1, 2"),
        "{}",
        missing.message
    );
}

fn modify<S: Store>(
    h: &mut Harness<S>,
    instance: u64,
    activate: &[&str],
    terminate: &[u64],
) -> crate::engine::CommandResult {
    h.run(Command::ModifyInstance {
        instance,
        activate: activate.iter().map(|s| (*s).to_owned()).collect(),
        terminate: terminate.to_vec(),
        variables: super::vars(json!({})),
    })
}

pub fn multi_instance_parallel_collects_outputs_in_item_order<S: Store>(h: &mut Harness<S>) {
    h.deploy(MULTI_INSTANCE);
    let m = h.mark();
    let i = h.create("mi-parallel", json!({"reviewers": ["ann", "bob", "cy"]}));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "SEQUENCE_FLOW_TAKEN p1",
            "ELEMENT_ACTIVATING review#body",
            "ELEMENT_ACTIVATED review#body",
            "ELEMENT_ACTIVATING review",
        ],
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATED review"), 3, "{trail:#?}");
    // Each inner instance has its item, its loop counter and its own input mappings.
    let jobs: Vec<_> = (0..3).map(|_| h.job("review")).collect();
    for (n, (job, who)) in jobs.iter().zip(["ann", "bob", "cy"]).enumerate() {
        assert_eq!(job.variables.get("reviewer"), Some(&Value::from(who)));
        assert_eq!(
            job.variables.get("loopCounter"),
            Some(&Value::from(n as i64 + 1))
        );
        assert_eq!(
            job.variables.get("who"),
            Some(&Value::from(who.to_uppercase()))
        );
    }
    // Completed out of order, collected in item order.
    for (job, score) in [(&jobs[2], 3), (&jobs[0], 1)] {
        let done = h.run(Command::CompleteJob {
            key: job.key,
            variables: super::vars(json!({ "score": score })),
        });
        assert_eq!(done, Ok(Accepted::Done));
        assert!(h.active(i));
    }
    let m = h.mark();
    let done = h.run(Command::CompleteJob {
        key: jobs[1].key,
        variables: super::vars(json!({"score": 2})),
    });
    assert_eq!(done, Ok(Accepted::Done));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "JOB_COMPLETED",
            "ELEMENT_COMPLETING review",
            "ELEMENT_COMPLETED review",
            "ELEMENT_COMPLETING review#body",
            "ELEMENT_COMPLETED review#body",
            "SEQUENCE_FLOW_TAKEN p2",
            "ELEMENT_ACTIVATING p-end",
            "ELEMENT_ACTIVATED p-end",
            "ELEMENT_COMPLETING p-end",
            "ELEMENT_COMPLETED p-end",
            "ELEMENT_COMPLETING mi-parallel",
            "ELEMENT_COMPLETED mi-parallel",
        ])
    );
    assert_eq!(h.process_variable(i, "scores"), Some(json!([1, 2, 3])));

    // An empty collection skips the activity, with an empty output.
    let j = h.create("mi-parallel", json!({"reviewers": []}));
    assert!(!h.active(j));
    assert_eq!(h.process_variable(j, "scores"), Some(json!([])));
}

pub fn multi_instance_error_on_one_item_ends_the_body<S: Store>(h: &mut Harness<S>) {
    h.deploy(MULTI_INSTANCE);
    let i = h.create("mi-parallel", json!({"reviewers": ["ann", "bob"]}));
    let first = h.job("review");
    let _second = h.job("review");
    let m = h.mark();
    let thrown = h.run(Command::ThrowError {
        key: first.key,
        code: "REJECTED".into(),
        message: "no".into(),
        variables: super::vars(json!({})),
    });
    assert_eq!(thrown, Ok(Accepted::Done));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "ELEMENT_TERMINATING review#body",
            "ELEMENT_TERMINATING review",
            "ELEMENT_TERMINATED review",
            "ELEMENT_TERMINATING review",
            "ELEMENT_TERMINATED review",
            "ELEMENT_TERMINATED review#body",
            "ELEMENT_ACTIVATING rejected-caught",
        ],
    );
    assert!(!h.active(i));
    // Interrupted: no partial output leaves the body.
    assert_eq!(h.process_variable(i, "scores"), None);
}

pub fn multi_instance_collection_that_is_no_list_raises_incident<S: Store>(h: &mut Harness<S>) {
    h.deploy(MULTI_INSTANCE);
    let i = h.create("mi-parallel", json!({"reviewers": "ann"}));
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::Expression);
    assert!(
        incidents[0]
            .message
            .contains("to be a list, but it was string"),
        "{}",
        incidents[0].message
    );
    let fixed = h.run(Command::SetVariables {
        scope: i,
        variables: super::vars(json!({"reviewers": ["ann"]})),
        local: false,
    });
    assert_eq!(fixed, Ok(Accepted::Done));
    let resolved = h.run(Command::ResolveIncident {
        key: incidents[0].key,
    });
    assert_eq!(resolved, Ok(Accepted::Done));
    h.complete("review", json!({"score": 5}));
    assert!(!h.active(i));
    assert_eq!(h.process_variable(i, "scores"), Some(json!([5])));
}

pub fn multi_instance_sequential_runs_one_at_a_time_until_its_condition<S: Store>(
    h: &mut Harness<S>,
) {
    h.deploy(MULTI_INSTANCE);
    let i = h.create("mi-sequential", json!({"parcels": ["p1", "p2", "p3"]}));
    let first = h.complete("pack", json!({}));
    assert_eq!(first.variables.get("parcel"), Some(&Value::from("p1")));
    assert_eq!(first.variables.get("loopCounter"), Some(&Value::from(1)));
    assert!(h.active(i));
    let m = h.mark();
    let second = h.complete("pack", json!({}));
    assert_eq!(second.variables.get("parcel"), Some(&Value::from("p2")));
    assert_eq!(second.variables.get("loopCounter"), Some(&Value::from(2)));
    // Two completed: the condition holds, the third parcel never starts.
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "ELEMENT_COMPLETED pack",
            "ELEMENT_COMPLETING pack#body",
            "ELEMENT_COMPLETED pack#body",
            "SEQUENCE_FLOW_TAKEN s2",
        ],
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING pack"), 0);
    assert!(!h.active(i));
}

pub fn multi_instance_subprocess_keeps_each_item_apart<S: Store>(h: &mut Harness<S>) {
    h.deploy(MULTI_INSTANCE);
    let i = h.create(
        "mi-subprocess",
        json!({"lines": [{"qty": 2, "price": 5}, {"qty": 1, "price": 7}]}),
    );
    assert!(!h.active(i));
    assert_eq!(h.process_variable(i, "totals"), Some(json!([10.01, 7.02])));
    // Each item's result stayed in its own subprocess.
    assert_eq!(h.process_variable(i, "total"), None);
    let trail = h.trail();
    assert_eq!(count(&trail, "ELEMENT_COMPLETED price"), 2);
    assert_eq!(count(&trail, "ELEMENT_COMPLETED multiply"), 2);
    assert_eq!(count(&trail, "ELEMENT_COMPLETED price#body"), 1);
}

pub fn event_subprocesses_interrupt_or_run_beside_the_process<S: Store>(h: &mut Harness<S>) {
    h.deploy(EVENT_SUBPROCESS);
    let i = h.create("esp-message", json!({"orderId": "o-1"}));
    // After an hour the non-interrupting timer starts the reminder beside the work.
    let m = h.mark();
    h.advance(SignedDuration::from_hours(1));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_ACTIVATING reminder",
            "ELEMENT_ACTIVATED reminder",
            "ELEMENT_ACTIVATING remind-start",
            "ELEMENT_ACTIVATED remind-start",
            "ELEMENT_COMPLETING remind-start",
            "ELEMENT_COMPLETED remind-start",
            "SEQUENCE_FLOW_TAKEN r1",
            "ELEMENT_ACTIVATING remind",
        ],
    );
    assert_eq!(h.element_instances(i, "work").len(), 1, "the work goes on");
    // The cancel message interrupts: the work and the running reminder end first.
    let m = h.mark();
    assert!(
        h.publish("cancel", "o-1", json!({"reason": "changed mind"}), 0)
            .is_ok()
    );
    let trail = h.trail_since(m);
    let order: Vec<&str> = [
        "ELEMENT_TERMINATED work",
        "ELEMENT_TERMINATED reminder",
        "ELEMENT_ACTIVATING cancellation",
        "ELEMENT_COMPLETED cancel-start",
        "ELEMENT_COMPLETED cancelled",
        "ELEMENT_COMPLETED cancellation",
        "ELEMENT_COMPLETED esp-message",
    ]
    .to_vec();
    let positions: Vec<usize> = order
        .iter()
        .map(|e| {
            trail
                .iter()
                .position(|t| t == e)
                .unwrap_or_else(|| panic!("{e} missing from {trail:#?}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{trail:#?}");
    assert!(!h.active(i));
    assert_eq!(h.process_variable(i, "reason"), Some(json!("changed mind")));
    // The harness still lists the jobs the cancel ended.
    h.job("work");
    h.job("remind");

    // Without a cancel, the process waits for the reminder it started, then completes.
    let j = h.create("esp-message", json!({"orderId": "o-2"}));
    h.advance(SignedDuration::from_hours(1));
    h.complete("work", json!({}));
    assert!(h.active(j), "the reminder still runs");
    h.complete("remind", json!({}));
    assert!(!h.active(j));
    // Work done before the hour: the timer is cancelled with the process.
    let k = h.create("esp-message", json!({"orderId": "o-3"}));
    h.complete("work", json!({}));
    assert!(!h.active(k));
    let m = h.mark();
    h.advance(SignedDuration::from_hours(2));
    assert_eq!(count(&h.trail_since(m), "ELEMENT_ACTIVATING reminder"), 0);
}

pub fn error_event_subprocess_catches_inside_its_subprocess<S: Store>(h: &mut Harness<S>) {
    h.deploy(EVENT_SUBPROCESS);
    let i = h.create("esp-error", json!({}));
    let charge = h.job("charge");
    let m = h.mark();
    let thrown = h.run(Command::ThrowError {
        key: charge.key,
        code: "PAYMENT_FAILED".into(),
        message: "card declined".into(),
        variables: super::vars(json!({"declined": true})),
    });
    assert_eq!(thrown, Ok(Accepted::Done));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_TERMINATING charge",
            "ELEMENT_TERMINATED charge",
            "ELEMENT_ACTIVATING pay-failed",
            "ELEMENT_ACTIVATED pay-failed",
            "ELEMENT_ACTIVATING failed-start",
        ],
    );
    // The subprocess handled its error: it completes and the process goes on.
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_COMPLETED pay-failed",
            "ELEMENT_COMPLETING pay",
            "ELEMENT_COMPLETED pay",
            "SEQUENCE_FLOW_TAKEN e5",
        ],
    );
    assert!(!h.active(i));
    assert_eq!(h.process_variable(i, "declined"), Some(json!(true)));
    // Another code is not caught: an incident.
    let j = h.create("esp-error", json!({}));
    let charge = h.job("charge");
    let thrown = h.run(Command::ThrowError {
        key: charge.key,
        code: "OTHER".into(),
        message: "?".into(),
        variables: super::vars(json!({})),
    });
    assert_eq!(thrown, Ok(Accepted::Done));
    assert!(h.active(j));
    assert!(
        h.incidents()
            .iter()
            .any(|x| x.instance == j && x.kind == IncidentKind::UnhandledError)
    );
}

pub fn escalation_and_conditional_event_subprocesses<S: Store>(h: &mut Harness<S>) {
    h.deploy(EVENT_SUBPROCESS);
    // Non-interrupting escalation: the shipment goes on, the notification runs beside it.
    let i = h.create("esp-escalation", json!({}));
    assert_contains(
        &h.trail(),
        &["ELEMENT_COMPLETED too-late", "SEQUENCE_FLOW_TAKEN x2"],
    );
    assert_eq!(h.element_instances(i, "notify-late").len(), 1);
    h.complete("ship", json!({}));
    assert!(h.active(i), "the notification still runs");
    h.complete("notify", json!({}));
    assert!(!h.active(i));

    // Interrupting conditional: a token waiting at the join goes with the rest.
    let j = h.create("esp-conditional", json!({"aborted": false}));
    h.complete("other", json!({}));
    let m = h.mark();
    let set = h.run(Command::SetVariables {
        scope: j,
        variables: super::vars(json!({"aborted": true})),
        local: false,
    });
    assert_eq!(set, Ok(Accepted::Done));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_TERMINATING k-wait",
            "ELEMENT_TERMINATED k-wait",
            "ELEMENT_ACTIVATING abort",
        ],
    );
    assert!(!h.active(j));
}

pub fn signals_reach_every_waiting_element_and_start_processes<S: Store>(h: &mut Harness<S>) {
    h.deploy(SIGNALS);
    let signal = |h: &mut Harness<S>, name: &str| {
        h.run(Command::BroadcastSignal {
            name: name.into(),
            variables: super::vars(json!({})),
        })
    };
    let c = h.create("sig-catcher", json!({}));
    // Non-interrupting: each ping starts a pong beside the long task.
    for _ in 0..2 {
        let m = h.mark();
        assert_eq!(signal(h, "ping"), Ok(Accepted::Done));
        assert_contains(
            &h.trail_since(m),
            &[
                "SIGNAL_BROADCASTED ping",
                "ELEMENT_ACTIVATING on-ping",
                "ELEMENT_ACTIVATED on-ping",
                "ELEMENT_COMPLETING on-ping",
                "ELEMENT_COMPLETED on-ping",
                "SEQUENCE_FLOW_TAKEN c6",
                "ELEMENT_ACTIVATING pong",
            ],
        );
    }
    assert_eq!(h.element_instances(c, "long").len(), 1);
    // A thrower elsewhere: its "stop" reaches the catch event with the thrower's variables,
    // its "go" end event starts a process.
    let m = h.mark();
    let t = h.create("sig-thrower", json!({}));
    let trail = h.trail_since(m);
    assert!(!h.active(t));
    assert_contains(
        &trail,
        &[
            "SIGNAL_BROADCASTED stop",
            "ELEMENT_COMPLETING wait-stop",
            "ELEMENT_COMPLETED wait-stop",
            "SEQUENCE_FLOW_TAKEN c3",
        ],
    );
    assert_eq!(h.process_variable(c, "reason"), Some(json!("all done")));
    assert_contains(
        &trail,
        &["SIGNAL_BROADCASTED go", "ELEMENT_ACTIVATING sig-started"],
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING sig-started"), 1);
    h.complete("started", json!({}));
    // Interrupting: the long task ends; the pongs it started go on.
    let m = h.mark();
    assert_eq!(signal(h, "abort"), Ok(Accepted::Done));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_TERMINATING long",
            "ELEMENT_TERMINATED long",
            "ELEMENT_ACTIVATING on-abort",
        ],
    );
    assert!(h.active(c));
    h.complete("pong", json!({}));
    h.complete("pong", json!({}));
    assert!(!h.active(c));
    // Nobody waits any more: a signal is taken and changes nothing.
    let m = h.mark();
    assert_eq!(signal(h, "abort"), Ok(Accepted::Done));
    assert_eq!(h.trail_since(m), s(&["SIGNAL_BROADCASTED abort"]));
    let refused = signal(h, "").unwrap_err();
    assert_eq!(refused.kind, RejectionKind::InvalidArgument);
}

/// `ca-child` again, changed (its job type), as a second version from another file.
const CA_CHILD_V2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs2" targetNamespace="http://flowmesh.dev/conformance">
  <bpmn:process id="ca-child" isExecutable="true">
    <bpmn:extensionElements><zeebe:versionTag value="next" /></bpmn:extensionElements>
    <bpmn:startEvent id="child-start" />
    <bpmn:serviceTask id="charge"><bpmn:extensionElements><zeebe:taskDefinition type="charge-v2" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="child-end" />
    <bpmn:sequenceFlow id="k1" sourceRef="child-start" targetRef="charge" />
    <bpmn:sequenceFlow id="k2" sourceRef="charge" targetRef="child-end" />
  </bpmn:process>
</bpmn:definitions>"#;

const CA_LATER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs3" targetNamespace="http://flowmesh.dev/conformance">
  <bpmn:process id="ca-later" isExecutable="true">
    <bpmn:startEvent id="later-start" />
    <bpmn:endEvent id="later-end" />
    <bpmn:sequenceFlow id="l1" sourceRef="later-start" targetRef="later-end" />
  </bpmn:process>
</bpmn:definitions>"#;

pub fn call_activity_runs_a_child_and_takes_its_variables<S: Store>(h: &mut Harness<S>) {
    h.deploy(CALL_ACTIVITY);
    let m = h.mark();
    let i = h.create("ca-parent", json!({"orderId": "o-1", "total": 5}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_ACTIVATING call-child",
            "ELEMENT_ACTIVATED call-child",
            "ELEMENT_ACTIVATING ca-child",
            "ELEMENT_ACTIVATED ca-child",
            "ELEMENT_ACTIVATING child-start",
        ],
    );
    // The child sees every parent variable; it is its own instance.
    let charge = h.job("charge");
    assert_ne!(charge.instance, i);
    assert_eq!(charge.variables.get("orderId"), Some(&Value::from("o-1")));
    assert_eq!(charge.variables.get("total"), Some(&Value::from(5)));
    // A child cannot be cancelled on its own.
    let refused = h
        .run(Command::CancelInstance {
            instance: charge.instance,
        })
        .unwrap_err();
    assert_eq!(refused.kind, RejectionKind::InvalidArgument);
    assert!(
        refused.message.contains("call activity"),
        "{}",
        refused.message
    );
    let m = h.mark();
    let done = h.run(Command::CompleteJob {
        key: charge.key,
        variables: super::vars(json!({"receipt": "r-1"})),
    });
    assert_eq!(done, Ok(Accepted::Done));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_COMPLETING ca-child",
            "ELEMENT_COMPLETED ca-child",
            "ELEMENT_COMPLETING call-child",
            "ELEMENT_COMPLETED call-child",
            "SEQUENCE_FLOW_TAKEN p2",
        ],
    );
    assert!(!h.active(i));
    assert!(!h.active(charge.instance));
    assert_eq!(h.process_variable(i, "receipt"), Some(json!("r-1")));

    // Multi-instance: a child per item, each result back at its item's place.
    let j = h.create("ca-multi", json!({"orders": ["a", "b"]}));
    let first = h.job("charge");
    let second = h.job("charge");
    assert_eq!(first.variables.get("order"), Some(&Value::from("a")));
    assert_eq!(second.variables.get("order"), Some(&Value::from("b")));
    for (job, receipt) in [(&second, "r-b"), (&first, "r-a")] {
        let done = h.run(Command::CompleteJob {
            key: job.key,
            variables: super::vars(json!({ "receipt": receipt })),
        });
        assert_eq!(done, Ok(Accepted::Done));
    }
    assert!(!h.active(j));
    assert_eq!(
        h.process_variable(j, "receipts"),
        Some(json!(["r-a", "r-b"]))
    );
}

pub fn call_activity_maps_variables_and_binds_versions<S: Store>(h: &mut Harness<S>) {
    h.deploy(CALL_ACTIVITY);
    h.deploy(CA_CHILD_V2);
    // Only the input mapping goes in, only the output mapping comes back; the version deployed
    // with the caller runs, not the latest.
    let i = h.create("ca-mapped", json!({"total": 21}));
    let charge = h.job("charge");
    assert_eq!(charge.variables.get("amount"), Some(&Value::from(42)));
    assert_eq!(charge.variables.get("total"), None);
    let done = h.run(Command::CompleteJob {
        key: charge.key,
        variables: super::vars(json!({"receipt": "r-2", "internal": 1})),
    });
    assert_eq!(done, Ok(Accepted::Done));
    assert!(!h.active(i));
    assert_eq!(h.process_variable(i, "paid"), Some(json!("r-2")));
    assert_eq!(h.process_variable(i, "receipt"), None);
    assert_eq!(h.process_variable(i, "internal"), None);
    // Latest binding: version 2.
    let j = h.create("ca-parent", json!({}));
    h.complete("charge-v2", json!({}));
    assert!(!h.active(j));
    // Version tag binding picks the tagged version; a process that is not deployed is an
    // incident until it is.
    let k = h.create("ca-tagged", json!({}));
    h.complete("charge", json!({}));
    let incidents: Vec<_> = h
        .incidents()
        .into_iter()
        .filter(|x| x.instance == k)
        .collect();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::CalledElement);
    assert!(
        incidents[0].message.contains("'ca-later'"),
        "{}",
        incidents[0].message
    );
    h.deploy(CA_LATER);
    let resolved = h.run(Command::ResolveIncident {
        key: incidents[0].key,
    });
    assert_eq!(resolved, Ok(Accepted::Done));
    assert!(!h.active(k));
}

pub fn call_activity_child_errors_and_termination<S: Store>(h: &mut Harness<S>) {
    h.deploy(CALL_ACTIVITY);
    // An error the child does not catch is caught on the call activity; the child ends.
    let i = h.create("ca-parent", json!({}));
    let charge = h.job("charge");
    let m = h.mark();
    let thrown = h.run(Command::ThrowError {
        key: charge.key,
        code: "PAY_FAILED".into(),
        message: "declined".into(),
        variables: super::vars(json!({})),
    });
    assert_eq!(thrown, Ok(Accepted::Done));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_TERMINATING call-child",
            "ELEMENT_TERMINATING ca-child",
            "ELEMENT_TERMINATING charge",
            "ELEMENT_TERMINATED charge",
        ],
    );
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_TERMINATED ca-child",
            "ELEMENT_TERMINATED call-child",
            "ELEMENT_ACTIVATING child-failed",
        ],
    );
    assert!(!h.active(i));
    assert!(!h.active(charge.instance));
    // The call activity's timer ends the child too.
    let j = h.create("ca-parent", json!({}));
    let charge = h.job("charge");
    h.advance(SignedDuration::from_hours(1));
    assert!(!h.active(charge.instance));
    assert!(!h.active(j));
    assert_eq!(
        h.run(Command::CompleteJob {
            key: charge.key,
            variables: super::vars(json!({})),
        })
        .unwrap_err()
        .kind,
        RejectionKind::NotFound
    );
    // Cancelling the parent cancels the child.
    let k = h.create("ca-parent", json!({}));
    let charge = h.job("charge");
    assert_eq!(
        h.run(Command::CancelInstance { instance: k }),
        Ok(Accepted::Done)
    );
    assert!(!h.active(charge.instance));
}

pub fn modification_moves_a_stuck_token_all_or_nothing<S: Store>(h: &mut Harness<S>) {
    h.deploy(MODIFY);
    let i = h.create("modify", json!({"id": "x"}));
    h.complete("a", json!({}));
    let wait = h.element_instances(i, "wait");
    assert_eq!(wait.len(), 1);
    // Refused instructions change nothing.
    let m = h.mark();
    let refused = modify(h, i, &["start"], &[]).unwrap_err();
    assert_eq!(refused.kind, RejectionKind::InvalidArgument);
    assert!(
        refused.message.contains("start event"),
        "{}",
        refused.message
    );
    let refused = modify(h, i, &["c"], &[999_999]).unwrap_err();
    assert_eq!(refused.kind, RejectionKind::NotFound);
    assert!(h.trail_since(m).is_empty(), "nothing applied");
    // Skip the message: activate c, then terminate the catch event.
    let m = h.mark();
    assert_eq!(modify(h, i, &["c"], &wait), Ok(Accepted::Done));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "ELEMENT_ACTIVATING c",
            "ELEMENT_ACTIVATED c",
            "JOB_CREATED c",
            "ELEMENT_TERMINATING wait",
            "ELEMENT_TERMINATED wait",
        ])
    );
    h.complete("c", json!({}));
    h.complete("d", json!({}));
    assert!(!h.active(i));
}

pub fn modification_opens_subprocesses_and_ends_emptied_scopes<S: Store>(h: &mut Harness<S>) {
    h.deploy(MODIFY);
    let j = h.create("modify", json!({"id": "y"}));
    h.complete("a", json!({}));
    let wait = h.element_instances(j, "wait");
    // An element inside a subprocess that is not active: the subprocess is opened without its
    // start event.
    let m = h.mark();
    assert_eq!(modify(h, j, &["d"], &wait), Ok(Accepted::Done));
    let trail = h.trail_since(m);
    assert_eq!(
        trail,
        s(&[
            "ELEMENT_ACTIVATING sub",
            "ELEMENT_ACTIVATED sub",
            "ELEMENT_ACTIVATING d",
            "ELEMENT_ACTIVATED d",
            "JOB_CREATED d",
            "ELEMENT_TERMINATING wait",
            "ELEMENT_TERMINATED wait",
        ])
    );
    h.complete("d", json!({}));
    assert!(!h.active(j), "d, then sub, then the end event");

    // Terminating the last active element ends the instance.
    let k = h.create("modify", json!({"id": "z"}));
    h.complete("a", json!({}));
    let wait = h.element_instances(k, "wait");
    let m = h.mark();
    assert_eq!(modify(h, k, &[], &wait), Ok(Accepted::Done));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "ELEMENT_TERMINATING wait",
            "ELEMENT_TERMINATED wait",
            "ELEMENT_TERMINATING modify",
            "ELEMENT_TERMINATED modify",
        ])
    );
    assert!(!h.active(k));
}

fn migrate<S: Store>(
    h: &mut Harness<S>,
    instance: u64,
    version: u32,
    mappings: &[(&str, &str)],
) -> crate::engine::CommandResult {
    h.run(Command::MigrateInstance {
        instance,
        version,
        mappings: mappings
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect(),
    })
}

pub fn migration_moves_an_instance_to_a_new_version_or_says_why_not<S: Store>(h: &mut Harness<S>) {
    h.deploy(MIGRATE_V1);
    let i = h.create("migrating", json!({"id": "m-1"}));
    h.complete("a", json!({}));
    h.deploy(MIGRATE_V2);
    // Refusals change nothing.
    let m = h.mark();
    let e = migrate(h, i, 2, &[]).unwrap_err();
    assert_eq!(e.kind, RejectionKind::InvalidArgument);
    assert!(e.message.contains("'wait' has no mapping"), "{}", e.message);
    let e = migrate(h, i, 2, &[("wait", "b")]).unwrap_err();
    assert!(e.message.contains("type would change"), "{}", e.message);
    let e = migrate(h, i, 3, &[("wait", "wait2")]).unwrap_err();
    assert_eq!(e.kind, RejectionKind::NotFound);
    let e = migrate(h, i, 1, &[("wait", "wait2")]).unwrap_err();
    assert!(
        e.message.contains("already runs version 1"),
        "{}",
        e.message
    );
    assert!(h.trail_since(m).is_empty());

    // The waiting catch event becomes the new one: it waits for the new message.
    let m = h.mark();
    assert_eq!(migrate(h, i, 2, &[("wait", "wait2")]), Ok(Accepted::Done));
    assert_eq!(
        h.trail_since(m),
        s(&["ELEMENT_MIGRATED migrating", "ELEMENT_MIGRATED wait2"])
    );
    assert!(h.publish("go", "m-1", json!({}), 0).is_ok());
    assert!(h.active(i), "the old message no longer correlates");
    let m = h.mark();
    assert!(h.publish("go2", "m-1", json!({}), 0).is_ok());
    assert_contains(
        &h.trail_since(m),
        &[
            "MESSAGE_CORRELATED",
            "ELEMENT_COMPLETING wait2",
            "ELEMENT_COMPLETED wait2",
            "SEQUENCE_FLOW_TAKEN f3",
            "ELEMENT_ACTIVATING b",
        ],
    );
    h.complete("b", json!({}));
    assert!(!h.active(i));

    // A mapped timer boundary keeps its due time; an unmapped one starts over.
    let on_v1 = |h: &mut Harness<S>, id: &str| match h.run(Command::CreateInstance {
        process_id: "migrating-timer".into(),
        version: Some(1),
        variables: super::vars(json!({ "id": id })),
    }) {
        Ok(Accepted::Created { instance }) => instance,
        other => panic!("create failed: {other:?}"),
    };
    let kept = on_v1(h, "t-1");
    let fresh = on_v1(h, "t-2");
    h.advance(SignedDuration::from_mins(30));
    let e = migrate(h, kept, 2, &[("work", "work"), ("deadline", "cancel2")]).unwrap_err();
    assert!(e.message.contains("same trigger"), "{}", e.message);
    assert_eq!(
        migrate(h, kept, 2, &[("work", "work"), ("deadline", "deadline2")]),
        Ok(Accepted::Done)
    );
    assert_eq!(
        migrate(h, fresh, 2, &[("work", "work")]),
        Ok(Accepted::Done)
    );
    // The new model's message boundary waits too.
    let m = h.mark();
    h.advance(SignedDuration::from_mins(30));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "TIMER_TRIGGERED",
            "ELEMENT_TERMINATING work",
            "ELEMENT_TERMINATED work",
            "ELEMENT_ACTIVATING deadline2",
        ],
    );
    assert!(!h.active(kept), "fired at the old due time: {trail:#?}");
    assert!(h.active(fresh));
    assert!(h.publish("go2", "t-2", json!({}), 0).is_ok());
    assert!(
        !h.active(fresh),
        "the message boundary of the new version fired"
    );
}

pub fn cancel_terminates_everything_inside<S: Store>(h: &mut Harness<S>) {
    h.deploy(SUBPROCESS);
    let i = h.create("subprocess", json!({"order": {"id": "x"}}));
    let inner = h.job("inner");
    let m = h.mark();
    assert_eq!(
        h.run(Command::CancelInstance { instance: i }),
        Ok(Accepted::Done)
    );
    assert_eq!(
        h.trail_since(m),
        s(&[
            "ELEMENT_TERMINATING subprocess",
            "ELEMENT_TERMINATING sub",
            "ELEMENT_TERMINATING inner",
            "ELEMENT_TERMINATED inner",
            "ELEMENT_TERMINATED sub",
            "ELEMENT_TERMINATED subprocess",
        ])
    );
    assert!(!h.active(i));
    assert_eq!(
        h.run(Command::CompleteJob {
            key: inner.key,
            variables: super::vars(json!({}))
        })
        .unwrap_err()
        .kind,
        RejectionKind::NotFound
    );
    assert_eq!(
        h.run(Command::CancelInstance { instance: i })
            .unwrap_err()
            .kind,
        RejectionKind::NotFound
    );
}

pub fn flowing_retail_order_runs_end_to_end<S: Store>(h: &mut Harness<S>) {
    h.deploy(RETAIL_ORDER);
    let i = h.create(
        "retail-order",
        json!({"order": {"orderId": "o-4711", "totalSum": 42.5}, "traceId": "tr-1", "CorrelationId_RetrievePayment": "c-1"}),
    );
    h.complete("save-order", json!({}));
    let pay = h.complete("retrieve-payment", json!({}));
    let v = |name: &str| pay.variables.get(name).map(|v| v.to_json());
    assert_eq!(
        (v("amount"), v("refId"), v("traceId")),
        (
            Some(json!(42.5)),
            Some(json!("o-4711")),
            Some(json!("tr-1"))
        )
    );
    assert!(
        h.publish(
            "PaymentReceivedEvent",
            "c-1",
            json!({"paymentId": "p-1"}),
            0
        )
        .is_ok()
    );
    h.complete("fetch-goods", json!({"pickId": "pick-1"}));
    let ship = h.complete("ship-goods", json!({"shipmentId": "s-1"}));
    assert_eq!(
        ship.variables.get("pickId").map(|v| v.to_json()),
        Some(json!("pick-1"))
    );
    h.complete("order-completed", json!({}));
    assert!(!h.active(i));
}

pub fn flowing_retail_payment_runs_end_to_end<S: Store>(h: &mut Harness<S>) {
    h.deploy(RETAIL_PAYMENT);
    // Credit covers it.
    assert!(
        h.publish(
            "RetrievePaymentCommand",
            "",
            json!({"refId": "r-1", "amount": 30}),
            0
        )
        .is_ok()
    );
    h.complete("deduct-credit", json!({"remaining": 0}));
    let event = h.complete("emit-event", json!({}));
    assert_eq!(
        event.headers,
        vec![("eventName".to_owned(), "CustomerCreditUsed".to_owned())]
    );
    h.complete("payment-received", json!({}));
    // The card fails once, the customer updates it, the charge succeeds.
    assert!(
        h.publish(
            "RetrievePaymentCommand",
            "",
            json!({"refId": "r-2", "amount": 50}),
            0
        )
        .is_ok()
    );
    h.complete("deduct-credit", json!({"remaining": 20}));
    h.complete("emit-event", json!({}));
    let charge = h.job("charge-credit-card");
    let instance = charge.instance;
    assert_eq!(
        h.run(Command::ThrowError {
            key: charge.key,
            code: "Error_PaymentError".into(),
            message: "expired".into(),
            variables: super::vars(json!({}))
        }),
        Ok(Accepted::Done)
    );
    h.complete("ask-customer", json!({}));
    assert!(
        h.publish("CreditCardUpdated", "r-2", json!({"card": "new"}), 0)
            .is_ok()
    );
    h.complete("charge-credit-card", json!({}));
    let charged = h.complete("emit-event", json!({}));
    assert_eq!(charged.headers[0].1, "CreditCardCharged");
    h.complete("payment-received", json!({}));
    assert!(!h.active(instance));
    // The customer never updates the card: after seven days the payment fails.
    assert!(
        h.publish(
            "RetrievePaymentCommand",
            "",
            json!({"refId": "r-3", "amount": 50}),
            0
        )
        .is_ok()
    );
    h.complete("deduct-credit", json!({"remaining": 50}));
    h.complete("emit-event", json!({}));
    let charge = h.job("charge-credit-card");
    assert_eq!(
        h.run(Command::ThrowError {
            key: charge.key,
            code: "Error_PaymentError".into(),
            message: String::new(),
            variables: super::vars(json!({}))
        }),
        Ok(Accepted::Done)
    );
    h.complete("ask-customer", json!({}));
    let m = h.mark();
    h.advance(SignedDuration::from_hours(7 * 24));
    assert_contains(
        &h.trail_since(m),
        &[
            "TIMER_TRIGGERED",
            "ELEMENT_TERMINATING wait-card-update",
            "ELEMENT_TERMINATED wait-card-update",
            "ELEMENT_ACTIVATING seven-days",
        ],
    );
    assert!(!h.active(charge.instance));
}

pub fn rejected_commands_change_nothing<S: Store>(h: &mut Harness<S>) {
    h.deploy(THREE_TASKS);
    let i = h.create("three-tasks", json!({}));
    let m = h.mark();
    let rejected = [
        (
            Command::CompleteJob {
                key: 999_999,
                variables: super::vars(json!({})),
            },
            RejectionKind::NotFound,
        ),
        (
            Command::FailJob {
                key: 999_999,
                retries: 1,
                backoff_ms: 0,
                message: String::new(),
            },
            RejectionKind::NotFound,
        ),
        (
            Command::CancelInstance { instance: 999_999 },
            RejectionKind::NotFound,
        ),
        (
            Command::ResolveIncident { key: 999_999 },
            RejectionKind::NotFound,
        ),
        (
            Command::CreateInstance {
                process_id: "nope".into(),
                version: None,
                variables: super::vars(json!({})),
            },
            RejectionKind::NotFound,
        ),
        (
            Command::Publish {
                name: "x".into(),
                correlation_key: String::new(),
                variables: super::vars(json!({})),
                ttl_ms: -1,
                message_id: None,
            },
            RejectionKind::InvalidArgument,
        ),
        (
            Command::Deploy {
                resource: "bad.bpmn".into(),
                xml: "<definitions".into(),
            },
            RejectionKind::InvalidArgument,
        ),
        (
            Command::SetVariables {
                scope: 999_999,
                variables: super::vars(json!({})),
                local: true,
            },
            RejectionKind::NotFound,
        ),
        (
            Command::AckPublication { key: 999_999 },
            RejectionKind::NotFound,
        ),
    ];
    for (command, kind) in rejected {
        let r = h.run(command.clone()).expect_err("rejected");
        assert_eq!(r.kind, kind, "{command:?}: {r}");
        assert!(!r.message.is_empty());
    }
    assert_eq!(h.mark(), m, "rejections emit no events");
    let bad = h.run(Command::Deploy {
        resource: "order.bpmn".into(),
        xml: TASKS.replace(
            "<zeebe:taskDefinition type=\"send-mail\" retries=\"5\" />",
            "",
        ),
    });
    let msg = bad.unwrap_err().message;
    assert!(
        msg.starts_with("order.bpmn:5:5: element send: send task has no job type"),
        "{msg}"
    );
    assert!(h.active(i));
}

type Keys = Vec<Vec<u8>>;

/// The storage contract under the engine: reads see the transaction's writes, scans are
/// prefix-bounded and ordered, ranges are half-open, a failed transaction leaves nothing.
pub fn kv_transactions_are_atomic_and_scans_ordered<S: Store>(h: &mut Harness<S>) {
    let store = &mut h.store;
    store
        .transact(|kv| -> Result<(), StoreError> {
            for k in [b"b2".as_slice(), b"a1", b"b1", b"b10", b"c"] {
                kv.put(Table::Meta, k, k)?;
            }
            let mut seen = false;
            assert!(
                kv.get(Table::Meta, b"b1", &mut |v| seen = v == b"b1")?,
                "reads its own write"
            );
            assert!(seen);
            kv.delete(Table::Meta, b"c")?;
            assert!(!kv.get(Table::Meta, b"c", &mut |_| {})?);
            Ok(())
        })
        .unwrap();
    let (scanned, ranged) = store
        .read(|kv| -> Result<(Keys, Keys), StoreError> {
            let mut scanned = Vec::new();
            kv.scan(Table::Meta, b"b", &mut |k, _| {
                scanned.push(k.to_vec());
                true
            })?;
            let mut ranged = Vec::new();
            kv.range(Table::Meta, b"a1", b"b10", &mut |k, _| {
                ranged.push(k.to_vec());
                true
            })?;
            Ok((scanned, ranged))
        })
        .unwrap();
    assert_eq!(scanned, [b"b1".to_vec(), b"b10".to_vec(), b"b2".to_vec()]);
    assert_eq!(ranged, [b"a1".to_vec(), b"b1".to_vec()]);
    let failed: Result<(), StoreError> = store.transact(|kv| {
        kv.put(Table::Meta, b"a1", b"changed")?;
        kv.delete(Table::Meta, b"b1")?;
        kv.put(Table::Jobs, b"new", b"x")?;
        Err(StoreError::Io("simulated failure".into()))
    });
    assert!(failed.is_err());
    let (a1, b1, new) = store
        .read(|kv| -> Result<_, StoreError> {
            let mut a1 = Vec::new();
            kv.get(Table::Meta, b"a1", &mut |v| a1 = v.to_vec())?;
            Ok((
                a1,
                kv.get(Table::Meta, b"b1", &mut |_| {})?,
                kv.get(Table::Jobs, b"new", &mut |_| {})?,
            ))
        })
        .unwrap();
    assert_eq!(
        (a1.as_slice(), b1, new),
        (b"a1".as_slice(), true, false),
        "the failed transaction left nothing"
    );
}
