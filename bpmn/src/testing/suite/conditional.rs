//! Conditional events (beyond Camunda 8): catch and boundary events.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

fn set(h: &mut Harness<impl Store>, scope: u64, values: serde_json::Value) {
    assert_eq!(
        h.run(Command::SetVariables {
            scope,
            variables: vars(values),
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
