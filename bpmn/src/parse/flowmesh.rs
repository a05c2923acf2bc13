//! The `flowmesh:` dialect on `bpmn:message`: `flowmesh:http` binds an HTTP route of a service
//! to the message, `flowmesh:event` an event type on a topic of the event bus (see
//! docs/bindings.md).

use roxmltree::Node;

use super::xml::{LineIndex, attr, bpmn_children, is_bpmn};
use crate::model::{
    EventBinding, FLOWMESH_NS, HttpBinding, KeySource, PathTemplate, Pos, Problem, ProblemKind,
};

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The bindings of a file, and a problem for each one that cannot be used.
#[derive(Default)]
pub(crate) struct Found {
    pub(crate) http: Vec<HttpBinding>,
    pub(crate) events: Vec<EventBinding>,
    pub(crate) problems: Vec<Problem>,
}

pub(crate) fn bindings(root: Node<'_, '_>, lines: &LineIndex<'_>) -> Found {
    let mut found = Found::default();
    for message in bpmn_children(root, "message") {
        let id = attr(message, "id").unwrap_or_default();
        let elements = message
            .children()
            .filter(|c| is_bpmn(*c, "extensionElements"))
            .flat_map(|e| e.children())
            .filter(|c| c.is_element() && c.tag_name().namespace() == Some(FLOWMESH_NS));
        for node in elements {
            let pos = lines.node_pos(node);
            let kind = node.tag_name().name();
            let result = match kind {
                "http" => binding(message, node, pos).map(|b| found.http.push(b)),
                "event" => event_binding(message, node, pos).map(|b| found.events.push(b)),
                _ => continue,
            };
            if let Err(why) = result {
                found.problems.push(Problem::new(
                    ProblemKind::InvalidBinding,
                    pos,
                    id,
                    format!("flowmesh:{kind}: {why}"),
                ));
            }
        }
    }
    found
}

fn required<'a>(node: Node<'a, '_>, name: &str) -> Result<&'a str, String> {
    attr(node, name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("the attribute {name}=\"...\" is missing"))
}

/// The message's fixed name: an expression cannot be matched against traffic.
fn message_name<'a>(message: Node<'a, '_>) -> Result<&'a str, String> {
    let name = attr(message, "name").map(str::trim).unwrap_or_default();
    if name.is_empty() || name.starts_with('=') {
        return Err(
            "the message needs a fixed name (name=\"...\", not an expression) to be observed"
                .to_owned(),
        );
    }
    Ok(name)
}

fn variables(node: Node<'_, '_>) -> Result<Option<crate::feel::Expression>, String> {
    match attr(node, "variables").map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => {
            let feel = v.strip_prefix('=').ok_or_else(|| {
                format!("variables '{v}' is not a FEEL expression; write it as '= {{...}}'")
            })?;
            crate::feel::Expression::parse(feel)
                .map(Some)
                .map_err(|e| format!("variables '{v}': {e}"))
        }
    }
}

fn event_binding(
    message: Node<'_, '_>,
    node: Node<'_, '_>,
    pos: Pos,
) -> Result<EventBinding, String> {
    let name = message_name(message)?;
    let key = required(node, "key")?;
    let feel = key.strip_prefix('=').ok_or_else(|| {
        format!(
            "key '{key}' is not a FEEL expression over the event; write it like '= data.orderId'"
        )
    })?;
    Ok(EventBinding {
        message: name.to_owned(),
        message_id: attr(message, "id").unwrap_or_default().to_owned(),
        topic: required(node, "topic")?.to_owned(),
        event_type: required(node, "type")?.to_owned(),
        key: crate::feel::Expression::parse(feel).map_err(|e| format!("key '{key}': {e}"))?,
        variables: variables(node)?,
        pos,
    })
}

fn binding(message: Node<'_, '_>, node: Node<'_, '_>, pos: Pos) -> Result<HttpBinding, String> {
    let required = |name: &str| required(node, name);
    let name = message_name(message)?;
    let method = required("method")?.to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(format!(
            "method '{method}' is not one of {}",
            METHODS.join(", ")
        ));
    }
    let path = PathTemplate::parse(required("path")?)?;
    let key = KeySource::parse(required("key")?)?;
    if let KeySource::Path(p) = &key
        && !path.has_param(p)
    {
        return Err(format!(
            "key 'path:{p}' names no parameter of path '{}'",
            path.source()
        ));
    }
    let variables = variables(node)?;
    Ok(HttpBinding {
        message: name.to_owned(),
        message_id: attr(message, "id").unwrap_or_default().to_owned(),
        service: required("service")?.to_owned(),
        method,
        path,
        key,
        variables,
        pos,
    })
}

#[cfg(test)]
mod tests {
    use crate::model::KeySource;

    const FILE: &str = r#"<?xml version="1.0"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
    xmlns:flowmesh="https://flowmesh.dev/schema/bpmn/1.0" id="d">
  <bpmn:message id="m1" name="OrderPlaced">
    <bpmn:extensionElements>
      <zeebe:subscription correlationKey="=orderId"/>
      <flowmesh:http service="order" method="post" path="/orders/{orderId}" key="path:orderId"/>
      <flowmesh:http service="checkout" method="PUT" path="/cart" key="=body.order.id" variables="={total: body.total}"/>
      <flowmesh:event topic="flowing-retail" type="OrderPlacedEvent" key="=data.orderId"/>
    </bpmn:extensionElements>
  </bpmn:message>
  <bpmn:message id="m2" name="Bad">
    <bpmn:extensionElements>
      <flowmesh:http service="x" method="POST" path="/a/{id}" key="path:other"/>
      <flowmesh:http service="x" method="BREW" path="/a" key="header:x"/>
      <flowmesh:http method="POST" path="/a" key="header:x"/>
    </bpmn:extensionElements>
  </bpmn:message>
  <bpmn:message id="m3" name="Paid">
    <bpmn:extensionElements>
      <flowmesh:event topic="t" type="PaidEvent" key="data.refId"/>
      <flowmesh:event type="PaidEvent" key="=data.refId"/>
    </bpmn:extensionElements>
  </bpmn:message>
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="s"/>
  </bpmn:process>
</bpmn:definitions>"#;

    #[test]
    fn bindings_are_read_and_bad_ones_are_problems() {
        let defs = crate::parse(FILE).unwrap();
        assert_eq!(defs.bindings.len(), 2);
        let b = &defs.bindings[0];
        assert_eq!(
            (b.message.as_str(), b.service.as_str(), b.method.as_str()),
            ("OrderPlaced", "order", "POST")
        );
        assert!(matches!(&b.key, KeySource::Path(p) if p == "orderId"));
        assert!(defs.bindings[1].reads_body());
        let problems: Vec<String> = defs
            .binding_problems
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems[3].contains("flowmesh:event: key 'data.refId' is not a FEEL"),
            "{problems:?}"
        );
        assert!(
            problems[4].contains("topic=\"...\" is missing"),
            "{problems:?}"
        );
        let e = &defs.event_bindings[0];
        assert_eq!(
            (e.message.as_str(), e.topic.as_str()),
            ("OrderPlaced", "flowing-retail")
        );
        let event =
            serde_json::json!({"type": "OrderPlacedEvent", "data": {"orderId": "o-1", "total": 3}});
        assert!(e.matches("flowing-retail", "OrderPlacedEvent"));
        assert_eq!(e.key(&event).unwrap(), "o-1");
        assert_eq!(e.variables(&event)["total"], 3);
        assert!(problems[0].contains("names no parameter"), "{problems:?}");
        assert!(problems[1].contains("method 'BREW'"), "{problems:?}");
        assert!(
            problems[2].contains("service=\"...\" is missing"),
            "{problems:?}"
        );
        assert!(defs.problems().iter().any(|p| p.element == "m2"));
    }
}
