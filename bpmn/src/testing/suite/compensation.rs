//! Compensation: handlers of completed activities, also inside completed subprocesses.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

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
