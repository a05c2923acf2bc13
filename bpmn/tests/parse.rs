//! Parsing: models from our own fixtures, problems that point at lines, and hostile input that is
//! refused quickly with bounded memory.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use flowmesh_bpmn::model::{Kind, ProblemKind, TaskKind};
use flowmesh_bpmn::parse::{self, Error, Limits};
use proptest::prelude::*;

const COLLABORATION: &str = include_str!("fixtures/order-collaboration.bpmn");
const NOT_RUNNABLE: &str = include_str!("fixtures/not-runnable.bpmn");

#[test]
fn collaboration_with_lanes_and_diagram_parses_into_processes() {
    let defs = parse::parse(COLLABORATION).unwrap();
    assert!(defs.problems().is_empty(), "{:?}", defs.problems());
    let ids: Vec<&str> = defs.executable_processes().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["order", "payment"]);

    let collab = defs.collaboration.as_ref().unwrap();
    assert_eq!(collab.participants.len(), 2);
    assert_eq!(
        collab.participants[1].process_id.as_deref(),
        Some("payment")
    );
    assert_eq!(collab.message_flows[0].source, "charge");

    let order = &defs.processes[0];
    assert_eq!(order.lanes[0].name.as_deref(), Some("Shop"));
    assert_eq!(order.lanes[0].elements.len(), 3);
    let charge = order.element(order.element_by_id("charge").unwrap());
    assert_eq!(charge.name.as_deref(), Some("Charge"));
    assert_eq!((charge.pos.line, charge.pos.col), (17, 5));
    assert_eq!(charge.inputs.len(), 1);
    assert_eq!(charge.outputs[0].target, ["payment", "receiptId"]);
    let Kind::Task(TaskKind::Job(job)) = &charge.kind else {
        panic!("charge is {:?}", charge.kind)
    };
    assert_eq!(job.job_type.source(), "charge");
    assert_eq!(job.headers, [("method".to_owned(), "card".to_owned())]);
    assert_eq!(charge.incoming.len(), 1);
    assert_eq!(
        order.flow(charge.outgoing[0]).name.as_deref(),
        Some("charged")
    );

    let shape = &defs.diagram.shapes["start"];
    assert_eq!(shape.bounds.width, 36.0);
    assert_eq!(shape.label.unwrap().y, 140.0);
    assert_eq!(defs.diagram.edges["f1"].waypoints.len(), 2);
}

#[test]
fn problems_name_the_element_and_line() {
    let defs = parse::parse(NOT_RUNNABLE).unwrap();
    let problems: Vec<String> = defs.problems().iter().map(ToString::to_string).collect();
    assert_eq!(defs.executable_processes().count(), 0);
    let expect = [
        (
            "5:5: element no-type: service task has no job type",
            ProblemKind::MissingJobType,
        ),
        (
            "6:5: element gw: exclusive gateway: flow 'f3' has no condition",
            ProblemKind::MissingCondition,
        ),
        (
            "7:5: element wait: message 'nameless' has no name",
            ProblemKind::MissingMessage,
        ),
    ];
    for (text, kind) in expect {
        assert!(
            problems.iter().any(|p| p.starts_with(text)),
            "missing {text:?} in {problems:#?}"
        );
        assert!(defs.problems().iter().any(|p| p.kind == kind));
    }
}

#[test]
fn pure_diagrams_parse_and_say_why_they_cannot_run() {
    let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p"><startEvent id="s"/><task id="t"/><sequenceFlow id="f" sourceRef="s" targetRef="t"/></process></definitions>"#;
    let defs = parse::parse(xml).unwrap();
    let problems = defs.problems();
    assert_eq!(problems[0].kind, ProblemKind::NotExecutable);
    assert!(problems[0].message.contains("isExecutable=\"true\""));
}

#[test]
fn not_xml_and_not_bpmn_are_refused_with_position() {
    let err = parse::parse("<definitions><process></definitions>").unwrap_err();
    assert!(matches!(err, Error::Xml { line: 1, .. }), "{err}");
    let err = parse::parse(r#"<html xmlns="http://www.w3.org/1999/xhtml"/>"#).unwrap_err();
    assert!(err.to_string().contains("root element is <html"), "{err}");
    let err = parse::parse("").unwrap_err();
    assert!(matches!(err, Error::Xml { .. }), "{err}");
}

#[test]
fn entity_expansion_is_refused() {
    let lol = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol2;</definitions>"#;
    let err = parse::parse(lol).unwrap_err();
    assert!(matches!(err, Error::Dtd { line: 2, col: 1 }), "{err}");
}

#[test]
fn deep_nesting_is_refused_before_a_tree_is_built() {
    let depth = 1_000_000;
    let xml = "<a>".repeat(depth) + &"</a>".repeat(depth);
    let started = Instant::now();
    let err = parse::parse(&xml).unwrap_err();
    assert!(matches!(err, Error::TooDeep { limit: 256, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn size_and_node_limits_hold() {
    let limits = Limits {
        max_bytes: 1024,
        ..Limits::default()
    };
    let big = format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">{}</definitions>"#,
        "<!-- padding -->".repeat(100)
    );
    assert!(matches!(
        parse::parse_with(&big, &limits),
        Err(Error::TooLarge { .. })
    ));
    let many = format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">{}</definitions>"#,
        "<x/>".repeat(5000)
    );
    let limits = Limits {
        max_nodes: 1000,
        ..Limits::default()
    };
    assert!(matches!(
        parse::parse_with(&many, &limits),
        Err(Error::TooManyNodes { .. })
    ));
}

#[test]
fn encodings_are_decoded_or_refused_clearly() {
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<definitions xmlns=\"http://www.omg.org/spec/BPMN/20100524/MODEL\"><process id=\"p\" name=\"Bestellung \xfcberpr\xfcfen\"/></definitions>";
    let defs = parse::parse_bytes(latin1).unwrap();
    assert_eq!(
        defs.processes[0].name.as_deref(),
        Some("Bestellung überprüfen")
    );
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(COLLABORATION.as_bytes());
    assert!(parse::parse_bytes(&bom).is_ok());
    let bad = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<definitions name=\"\xff\"/>";
    let err = parse::parse_bytes(bad).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("2:20: byte 0xFF is not valid UTF-8"),
        "{err}"
    );
}

#[test]
fn zeebe_0x_json_paths_and_conditions_are_read_as_feel() {
    let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0">
  <process id="legacy" isExecutable="true">
    <startEvent id="s"/>
    <exclusiveGateway id="gw"/>
    <intermediateCatchEvent id="paid"><messageEventDefinition messageRef="m"/></intermediateCatchEvent>
    <endEvent id="e1"/><endEvent id="e2"/>
    <sequenceFlow id="f0" sourceRef="s" targetRef="gw"/>
    <sequenceFlow id="f1" sourceRef="gw" targetRef="paid"><conditionExpression>$.amount &gt; 0 &amp;&amp; $.mode == 'card'</conditionExpression></sequenceFlow>
    <sequenceFlow id="f2" sourceRef="gw" targetRef="e2"><conditionExpression>$.amount &lt;= 0</conditionExpression></sequenceFlow>
    <sequenceFlow id="f3" sourceRef="paid" targetRef="e1"/>
  </process>
  <message id="m" name="Paid"><extensionElements><zeebe:subscription correlationKey="$.order.id"/></extensionElements></message>
</definitions>"#;
    let defs = parse::parse(xml).unwrap();
    assert!(defs.problems().is_empty(), "{:?}", defs.problems());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes give a model or an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse::parse_bytes(&bytes);
    }

    /// Cutting a valid file anywhere, or flipping a byte, gives a model or an error.
    #[test]
    fn damaged_models_never_panic(cut in 0usize..COLLABORATION.len(), flip in 0usize..COLLABORATION.len(), byte in any::<u8>()) {
        let _ = parse::parse_bytes(&COLLABORATION.as_bytes()[..cut]);
        let mut damaged = COLLABORATION.as_bytes().to_vec();
        damaged[flip] = byte;
        let _ = parse::parse_bytes(&damaged);
    }
}

/// A process around `body`, with the escalation `late` defined.
fn process(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:escalation id="late" escalationCode="LATE" />
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start" />
    {body}
  </bpmn:process>
</bpmn:definitions>"#
    )
}

fn messages(xml: &str) -> Vec<String> {
    let defs = parse::parse(xml).unwrap();
    defs.problems().iter().map(|p| p.message.clone()).collect()
}

#[test]
fn link_events_must_pair_by_name_in_their_scope() {
    let missing = process(
        r#"<bpmn:intermediateThrowEvent id="go"><bpmn:linkEventDefinition name="X" /></bpmn:intermediateThrowEvent>
           <bpmn:sequenceFlow id="f" sourceRef="start" targetRef="go" />"#,
    );
    let found = messages(&missing);
    assert!(
        found
            .iter()
            .any(|m| m.contains("no link catch event named 'X'")),
        "{found:?}"
    );
    let twice = process(
        r#"<bpmn:intermediateThrowEvent id="go"><bpmn:linkEventDefinition name="X" /></bpmn:intermediateThrowEvent>
           <bpmn:intermediateCatchEvent id="c1"><bpmn:linkEventDefinition name="X" /></bpmn:intermediateCatchEvent>
           <bpmn:intermediateCatchEvent id="c2"><bpmn:linkEventDefinition name="X" /></bpmn:intermediateCatchEvent>
           <bpmn:endEvent id="e1" /><bpmn:endEvent id="e2" />
           <bpmn:sequenceFlow id="f" sourceRef="start" targetRef="go" />
           <bpmn:sequenceFlow id="g1" sourceRef="c1" targetRef="e1" />
           <bpmn:sequenceFlow id="g2" sourceRef="c2" targetRef="e2" />"#,
    );
    let found = messages(&twice);
    assert!(
        found
            .iter()
            .any(|m| m.contains("several link catch events are named 'X'")),
        "{found:?}"
    );
    let entered = process(
        r#"<bpmn:intermediateThrowEvent id="go"><bpmn:linkEventDefinition name="X" /></bpmn:intermediateThrowEvent>
           <bpmn:intermediateCatchEvent id="c"><bpmn:linkEventDefinition name="X" /></bpmn:intermediateCatchEvent>
           <bpmn:endEvent id="e" />
           <bpmn:sequenceFlow id="f" sourceRef="start" targetRef="go" />
           <bpmn:sequenceFlow id="in" sourceRef="start" targetRef="c" />
           <bpmn:sequenceFlow id="g" sourceRef="c" targetRef="e" />"#,
    );
    let found = messages(&entered);
    assert!(
        found
            .iter()
            .any(|m| m.contains("a link catch event has no incoming sequence flow")),
        "{found:?}"
    );
}

#[test]
fn escalation_catches_are_unique_per_code_and_throws_need_a_code() {
    let doubled = process(
        r#"<bpmn:subProcess id="sub"><bpmn:startEvent id="s" /><bpmn:endEvent id="e" /><bpmn:sequenceFlow id="s1" sourceRef="s" targetRef="e" /></bpmn:subProcess>
           <bpmn:boundaryEvent id="b1" attachedToRef="sub" cancelActivity="false"><bpmn:escalationEventDefinition escalationRef="late" /></bpmn:boundaryEvent>
           <bpmn:boundaryEvent id="b2" attachedToRef="sub"><bpmn:escalationEventDefinition escalationRef="late" /></bpmn:boundaryEvent>
           <bpmn:endEvent id="x1" /><bpmn:endEvent id="x2" /><bpmn:endEvent id="done" />
           <bpmn:sequenceFlow id="f" sourceRef="start" targetRef="sub" />
           <bpmn:sequenceFlow id="f2" sourceRef="sub" targetRef="done" />
           <bpmn:sequenceFlow id="g1" sourceRef="b1" targetRef="x1" />
           <bpmn:sequenceFlow id="g2" sourceRef="b2" targetRef="x2" />"#,
    );
    let found = messages(&doubled);
    assert!(
        found
            .iter()
            .any(|m| m.contains("catches code 'LATE'; keep one")),
        "{found:?}"
    );
    let no_ref = process(
        r#"<bpmn:endEvent id="e"><bpmn:escalationEventDefinition /></bpmn:endEvent>
           <bpmn:sequenceFlow id="f" sourceRef="start" targetRef="e" />"#,
    );
    let found = messages(&no_ref);
    assert!(
        found
            .iter()
            .any(|m| m.contains("has no escalation; pick an escalation")),
        "{found:?}"
    );
}
