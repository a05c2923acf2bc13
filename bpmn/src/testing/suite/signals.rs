//! Signals: start, catch, throw, boundary and end events.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

pub fn signals_reach_every_waiting_element_and_start_processes<S: Store>(h: &mut Harness<S>) {
    h.deploy(SIGNALS);
    let signal = |h: &mut Harness<S>, name: &str| {
        h.run(Command::BroadcastSignal {
            name: name.into(),
            variables: vars(json!({})),
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
