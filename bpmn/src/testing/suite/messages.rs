//! Messages: catch, receive and throw events, buffering, correlation, message starts and
//! message boundary events.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

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
            variables: vars(json!({"amount": 7})),
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
            variables: vars(json!({}))
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
