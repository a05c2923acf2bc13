//! Tasks and the basics around them: record order, task kinds, variables, job retries,
//! versions, cancellation, refused commands, and the storage contract.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

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
            variables: vars(json!({}))
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
            variables: vars(json!({"approved": true}))
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
            variables: vars(json!({"result": {"total": 99.5, "currency": "EUR"}}))
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
            variables: vars(json!({"tracking": "T-1", "currency": "USD"}))
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
            variables: vars(json!({}))
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
        variables: vars(json!({})),
    });
    assert!(matches!(pinned, Ok(Accepted::Created { .. })));
    let missing = h
        .run(Command::CreateInstance {
            process_id: "three-tasks".into(),
            version: Some(9),
            variables: vars(json!({})),
        })
        .unwrap_err();
    assert_eq!(missing.kind, RejectionKind::NotFound);
    assert!(
        missing.message.contains("deployed versions: 1, 2"),
        "{}",
        missing.message
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
            variables: vars(json!({}))
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

pub fn rejected_commands_change_nothing<S: Store>(h: &mut Harness<S>) {
    h.deploy(THREE_TASKS);
    let i = h.create("three-tasks", json!({}));
    let m = h.mark();
    let rejected = [
        (
            Command::CompleteJob {
                key: 999_999,
                variables: vars(json!({})),
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
                variables: vars(json!({})),
            },
            RejectionKind::NotFound,
        ),
        (
            Command::Publish {
                name: "x".into(),
                correlation_key: String::new(),
                variables: vars(json!({})),
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
                variables: vars(json!({})),
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
