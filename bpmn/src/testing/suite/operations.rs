//! Operations on running instances: modification and migration.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

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
        variables: vars(json!({})),
    })
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

    // The waiting catch event becomes the new one; its subscription moves with it, message
    // name and correlation key as they were (Zeebe's rule for mapped catch events).
    let m = h.mark();
    assert_eq!(migrate(h, i, 2, &[("wait", "wait2")]), Ok(Accepted::Done));
    assert_eq!(
        h.trail_since(m),
        s(&["ELEMENT_MIGRATED migrating", "ELEMENT_MIGRATED wait2"])
    );
    assert!(h.publish("go2", "m-1", json!({}), 0).is_ok());
    assert!(
        h.active(i),
        "the new version's message is not what it waits for"
    );
    let m = h.mark();
    assert!(h.publish("go", "m-1", json!({}), 0).is_ok());
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
        variables: vars(json!({ "id": id })),
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
