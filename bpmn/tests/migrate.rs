//! `migrate-model`: a Camunda 7 model becomes one flowmesh runs, with the same behaviour, and
//! says what it changed and what it left.

#![allow(clippy::unwrap_used)]

use flowmesh_bpmn::migrate::{self, Options};
use flowmesh_bpmn::parse;
use flowmesh_bpmn::store::MemoryStore;
use flowmesh_bpmn::testing::Harness;
use serde_json::json;

const C7: &str = include_str!("fixtures/camunda7-payment.bpmn");

fn migrated() -> migrate::Migrated {
    migrate::migrate(
        C7,
        &Options {
            correlation_key: Some("=orderId".into()),
        },
    )
    .unwrap()
}

#[test]
fn the_camunda_7_model_cannot_run_as_it_is_and_can_after() {
    let before = parse::parse(C7).unwrap();
    assert!(!before.problems().is_empty());
    let m = migrated();
    let after = parse::parse(&m.xml).unwrap();
    assert!(after.problems().is_empty(), "{:?}", after.problems());
    assert!(!m.xml.contains("camunda:delegateExpression"));
    assert!(!m.xml.contains("camunda:asyncBefore"));
    assert!(
        m.xml
            .contains(r#"<zeebe:taskDefinition type="chargeCardAdapter" />"#)
    );
    assert!(
        m.xml
            .contains(r#"<zeebe:taskDefinition type="io.example.NotifyDelegate" />"#)
    );
    assert!(m.xml.contains(r#"<zeebe:taskDefinition type="audit" />"#));
    assert!(
        m.xml
            .contains(r#"<bpmn:task id="deduct" name="Deduct credit" />"#)
    );
    assert!(m.xml.contains(">P7D<"));
    assert!(m.xml.contains("=amount &gt; 1000 and not(approved)"));
    let says = |what: &str| m.notes.iter().any(|n| n.message.contains(what));
    assert!(says("became job type 'chargeCardAdapter'"));
    assert!(says(
        "became a message event with job type 'emitEventAdapter'"
    ));
    assert!(says("camunda:asyncBefore removed"));
    assert!(m.notes.iter().all(|n| !n.todo), "{:?}", m.notes);
}

#[test]
fn the_migrated_model_runs_as_it_did() {
    let m = migrated();
    let mut h = Harness::new(MemoryStore::new());
    h.deploy(&m.xml);
    h.publish(
        "PaymentRequested",
        "o-1",
        json!({"orderId": "o-1", "amount": 5000, "approved": false}),
        0,
    )
    .unwrap();
    h.complete("chargeCardAdapter", json!({}));
    h.complete("emitEventAdapter", json!({}));
    // A large unapproved payment waits for the card update, correlated by the order id.
    let trail = h.trail();
    assert!(
        trail.contains(&"ELEMENT_ACTIVATED wait-update".to_owned()),
        "{trail:#?}"
    );
    h.publish("CardUpdated", "o-1", json!({}), 0).unwrap();
    h.complete("io.example.NotifyDelegate", json!({}));
    h.complete("audit", json!({}));
    h.complete("paymentReceivedAdapter", json!({}));
    let trail = h.trail();
    assert!(
        trail.contains(&"ELEMENT_COMPLETED received".to_owned()),
        "{trail:#?}"
    );
}

#[test]
fn what_cannot_be_translated_is_reported() {
    let c7 = C7.replace(
        "camunda:expression=\"#{true}\"",
        "camunda:expression=\"#{ledger.deduct(execution)}\"",
    );
    let m = migrate::migrate(&c7, &Options::default()).unwrap();
    let todo: Vec<&str> = m
        .notes
        .iter()
        .filter(|n| n.todo)
        .map(|n| n.message.as_str())
        .collect();
    assert!(todo.iter().any(|t| t.contains("calls Java")), "{todo:?}");
    // Without a correlation key the receive task's message is still missing one.
    let problems = parse::parse(&m.xml).unwrap().problems();
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("no correlation key")),
        "{problems:?}"
    );
    assert!(migrate::migrate("<x/>", &Options::default()).is_err());
}

/// Camunda 7: a call activity passing one variable in and one out, once per item of a
/// collection, until two are done.
const C7_CALL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs" targetNamespace="http://example.com">
  <bpmn:process id="ship-all" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:callActivity id="ship-one" calledElement="ship" camunda:calledElementBinding="deployment">
      <bpmn:extensionElements>
        <camunda:in source="parcel" target="what" />
        <camunda:out source="label" target="label" />
      </bpmn:extensionElements>
      <bpmn:multiInstanceLoopCharacteristics isSequential="true" camunda:collection="${parcels}" camunda:elementVariable="parcel">
        <bpmn:completionCondition xsi:type="bpmn:tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">${nrOfCompletedInstances &gt;= 2}</bpmn:completionCondition>
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:callActivity>
    <bpmn:endEvent id="end" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="ship-one" />
    <bpmn:sequenceFlow id="f2" sourceRef="ship-one" targetRef="end" />
  </bpmn:process>
  <bpmn:process id="ship" isExecutable="true">
    <bpmn:startEvent id="s-start" />
    <bpmn:serviceTask id="label-it" camunda:delegateExpression="${labelAdapter}" />
    <bpmn:endEvent id="s-end" />
    <bpmn:sequenceFlow id="s1" sourceRef="s-start" targetRef="label-it" />
    <bpmn:sequenceFlow id="s2" sourceRef="label-it" targetRef="s-end" />
  </bpmn:process>
</bpmn:definitions>"#;

#[test]
fn camunda_7_call_activities_and_multi_instance_translate_and_run() {
    assert!(!parse::parse(C7_CALL).unwrap().problems().is_empty());
    let m = migrate::migrate(C7_CALL, &Options::default()).unwrap();
    let after = parse::parse(&m.xml).unwrap();
    assert!(
        after.problems().is_empty(),
        "{:?}\n{}",
        after.problems(),
        m.xml
    );
    assert!(m.notes.iter().all(|n| !n.todo), "{:?}", m.notes);
    assert!(m.xml.contains(
        r#"<zeebe:calledElement processId="ship" propagateAllParentVariables="false" propagateAllChildVariables="false" bindingType="deployment" />"#
    ), "{}", m.xml);
    assert!(
        m.xml
            .contains(r#"inputCollection="=parcels" inputElement="parcel""#),
        "{}",
        m.xml
    );
    assert!(
        m.xml.contains("= numberOfCompletedInstances &gt;= 2"),
        "{}",
        m.xml
    );

    let mut h = Harness::new(MemoryStore::new());
    h.deploy(&m.xml);
    let i = h.create("ship-all", json!({"parcels": ["p1", "p2", "p3"]}));
    for (n, parcel) in ["p1", "p2"].iter().enumerate() {
        let job = h.complete("labelAdapter", json!({ "label": format!("L{n}") }));
        // Only the mapped variable went in.
        assert_eq!(
            job.variables.get("what").and_then(|v| v.as_str()),
            Some(*parcel)
        );
        assert!(!job.variables.contains_key("parcels"));
    }
    assert!(!h.active(i), "two done: the completion condition held");
    assert_eq!(h.process_variable(i, "label"), Some(json!("L1")));
}
