//! Call activities: child instances, variable passing, bindings, errors and termination.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

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
        variables: vars(json!({"receipt": "r-1"})),
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
            variables: vars(json!({ "receipt": receipt })),
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
        variables: vars(json!({"receipt": "r-2", "internal": 1})),
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
        variables: vars(json!({})),
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
            variables: vars(json!({})),
        })
        .unwrap_err()
        .kind,
        RejectionKind::NotFound
    );
    // A process that calls itself before anything waits stops at the depth limit.
    let top = h.create("ca-recursive", json!({}));
    let deep: Vec<_> = h
        .incidents()
        .into_iter()
        .filter(|x| x.kind == IncidentKind::CalledElement)
        .collect();
    assert_eq!(deep.len(), 1);
    assert!(
        deep[0].message.contains("nested 1000 deep"),
        "{}",
        deep[0].message
    );
    assert!(h.active(top));
    // Cancelling the parent cancels the child.
    let k = h.create("ca-parent", json!({}));
    let charge = h.job("charge");
    assert_eq!(
        h.run(Command::CancelInstance { instance: k }),
        Ok(Accepted::Done)
    );
    assert!(!h.active(charge.instance));
}
