//! Event subprocesses: message, timer, error, escalation and conditional starts.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

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
        variables: vars(json!({"declined": true})),
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
        variables: vars(json!({})),
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
        variables: vars(json!({"aborted": true})),
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
