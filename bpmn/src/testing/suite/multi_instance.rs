//! Multi-instance activities: parallel and sequential bodies, output collection, completion
//! condition.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

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
            variables: vars(json!({ "score": score })),
        });
        assert_eq!(done, Ok(Accepted::Done));
        assert!(h.active(i));
    }
    let m = h.mark();
    let done = h.run(Command::CompleteJob {
        key: jobs[1].key,
        variables: vars(json!({"score": 2})),
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
        variables: vars(json!({})),
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
        variables: vars(json!({"reviewers": ["ann"]})),
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
