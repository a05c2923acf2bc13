//! Errors, escalations, links and terminate end events.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

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
            variables: vars(json!({"why": code})),
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
        variables: vars(json!({})),
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
            variables: vars(json!({})),
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
        variables: vars(json!({})),
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
            variables: vars(json!({})),
        })
        .unwrap_err();
    assert_eq!(late.kind, RejectionKind::NotFound);
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
