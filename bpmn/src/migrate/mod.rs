//! `flowmesh migrate-model`: Camunda 7 models into the Zeebe dialect flowmesh runs. The file
//! is edited in place as text (roxmltree gives every node's position), so everything not
//! translated, diagram data included, stays byte for byte; each change and each thing left
//! for a person is reported as a [`Note`].
//!
//! Translated: `camunda:delegateExpression`, `camunda:class` and external-task topics become
//! job types (`zeebe:taskDefinition`); `camunda:expression` services that do nothing become
//! plain tasks; start and end execution listeners on none throw and end events become message
//! events with a job; `camunda:asyncBefore`/`asyncAfter`/`exclusive` go (every Zeebe step is a
//! transaction of its own); JUEL conditions and timer values become FEEL; `PT7D`-style
//! durations become `P7D`; user task assignees and forms move to their Zeebe elements;
//! call activities get `zeebe:calledElement` (with `camunda:in`/`out` as propagate flags and
//! mappings); multi-instance collections, cardinalities and completion conditions become
//! `zeebe:loopCharacteristics` and FEEL; messages get a correlation key when one is given.

mod juel;

use std::ops::Range;

use roxmltree::{Document, Node};

const CAMUNDA: &str = "http://camunda.org/schema/1.0/bpmn";
const BPMN: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
const ZEEBE: &str = "http://camunda.org/schema/zeebe/1.0";

/// Why a file cannot be migrated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The same refusals as for any model (size, depth, DOCTYPE, encoding, well-formedness).
    #[error(transparent)]
    Parse(#[from] crate::parse::Error),
    #[error("the file is not BPMN 2.0: its root is not bpmn:definitions")]
    NotBpmn,
    #[error("{0}")]
    Xml(String),
}

/// What the migration did or could not do at one element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub element: String,
    pub line: u32,
    /// Translated (`false`), or left for a person (`true`).
    pub todo: bool,
    pub message: String,
}

/// The translated file and what happened.
#[derive(Debug)]
pub struct Migrated {
    pub xml: String,
    pub notes: Vec<Note>,
}

#[derive(Debug, Default, Clone)]
pub struct Options {
    /// A correlation key (`=orderId`) for messages that have none.
    pub correlation_key: Option<String>,
}

struct Edit {
    range: Range<usize>,
    text: String,
}

struct Work<'a> {
    src: &'a str,
    doc: &'a Document<'a>,
    edits: Vec<Edit>,
    notes: Vec<Note>,
}

impl<'a> Work<'a> {
    fn note(&mut self, node: Node<'_, '_>, todo: bool, message: impl Into<String>) {
        let pos = self.doc.text_pos_at(node.range().start);
        self.notes.push(Note {
            element: node
                .attribute("id")
                .unwrap_or(node.tag_name().name())
                .to_owned(),
            line: pos.row,
            todo,
            message: message.into(),
        });
    }

    fn replace(&mut self, range: Range<usize>, text: impl Into<String>) {
        self.edits.push(Edit {
            range,
            text: text.into(),
        });
    }

    /// Removes an attribute with the whitespace before it.
    fn drop_attr(&mut self, node: Node<'_, '_>, name: &str) {
        let Some(a) = node
            .attributes()
            .find(|a| a.namespace() == Some(CAMUNDA) && a.name() == name)
        else {
            return;
        };
        let mut r = a.range();
        while r.start > 0 && self.src.as_bytes()[r.start - 1].is_ascii_whitespace() {
            r.start -= 1;
        }
        self.replace(r, "");
    }

    /// The prefix the file uses for a namespace (`bpmn:`), or none.
    fn prefix(&self, ns: &str) -> String {
        self.doc
            .root_element()
            .namespaces()
            .find(|n| n.uri() == ns)
            .and_then(|n| n.name())
            .map(|p| format!("{p}:"))
            .unwrap_or_default()
    }
}

/// Translates a Camunda 7 model. The input must be a BPMN file that parses.
pub fn migrate(text: &str, options: &Options) -> Result<Migrated, Error> {
    // The same limits and refusals as any model, before the tree is built again here.
    crate::parse::parse(text)?;
    let doc = Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            ..roxmltree::ParsingOptions::default()
        },
    )
    .map_err(|e| Error::Xml(e.to_string()))?;
    let mut w = Work {
        src: text,
        doc: &doc,
        edits: Vec::new(),
        notes: Vec::new(),
    };
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(BPMN) || root.tag_name().name() != "definitions" {
        return Err(Error::NotBpmn);
    }
    let bpmn = w.prefix(BPMN);
    if !root.namespaces().any(|n| n.uri() == ZEEBE) {
        // Declared on the root, right after its name.
        let at = root.range().start + 1 + root.tag_name().name().len() + bpmn.len();
        w.replace(at..at, format!(" xmlns:zeebe=\"{ZEEBE}\""));
    }
    for node in root.descendants().filter(|n| n.is_element()) {
        if node.tag_name().namespace() == Some(BPMN) {
            element(&mut w, node, &bpmn, options);
        }
    }
    let mut edits = w.edits;
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    let mut out = String::with_capacity(text.len() + 1024);
    let mut at = 0;
    for e in &edits {
        if e.range.start < at {
            continue; // overlapping edits cannot happen by construction; keep the first
        }
        out.push_str(&text[at..e.range.start]);
        out.push_str(&e.text);
        at = e.range.end;
    }
    out.push_str(&text[at..]);
    let mut notes = w.notes;
    notes.sort_by_key(|n| (n.line, n.todo));
    Ok(Migrated { xml: out, notes })
}

/// What to add to one element's extension elements, and which of its camunda children go.
#[derive(Default)]
struct Extensions {
    add: Vec<String>,
    drop_camunda: bool,
}

fn camunda_attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.namespace() == Some(CAMUNDA) && a.name() == name)
        .map(|a| a.value())
}

fn escape(text: &str) -> String {
    crate::render::escape(text)
}

/// A job type from a delegate expression (`#{chargeAdapter}` → `chargeAdapter`) or a class.
fn job_type(expr: &str) -> String {
    let t = expr.trim();
    let inner = t
        .strip_prefix("${")
        .or_else(|| t.strip_prefix("#{"))
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(t);
    inner.trim().to_owned()
}

fn element(w: &mut Work<'_>, node: Node<'_, '_>, bpmn: &str, options: &Options) {
    let tag = node.tag_name().name();
    let mut ext = Extensions::default();
    for plain in [
        "asyncBefore",
        "asyncAfter",
        "exclusive",
        "jobPriority",
        "historyTimeToLive",
        "versionTag",
        "isStartableInTasklist",
    ] {
        if camunda_attr(node, plain).is_some() {
            w.drop_attr(node, plain);
            if plain.starts_with("async") {
                w.note(node, false, format!("camunda:{plain} removed: every step in flowmesh (as in Zeebe) is its own transaction"));
            }
        }
    }
    match tag {
        "serviceTask" | "sendTask" | "businessRuleTask" | "scriptTask" => {
            if let Some(d) = camunda_attr(node, "delegateExpression") {
                let t = job_type(d);
                w.drop_attr(node, "delegateExpression");
                w.note(
                    node,
                    false,
                    format!("camunda:delegateExpression '{d}' became job type '{t}'"),
                );
                ext.add
                    .push(format!("<zeebe:taskDefinition type=\"{}\" />", escape(&t)));
            } else if let Some(c) = camunda_attr(node, "class") {
                w.drop_attr(node, "class");
                w.note(
                    node,
                    false,
                    format!("camunda:class '{c}' became job type '{c}'"),
                );
                ext.add
                    .push(format!("<zeebe:taskDefinition type=\"{}\" />", escape(c)));
            } else if camunda_attr(node, "type") == Some("external") {
                let topic = camunda_attr(node, "topic").unwrap_or("external");
                w.drop_attr(node, "type");
                w.drop_attr(node, "topic");
                w.note(
                    node,
                    false,
                    format!("external task topic '{topic}' became job type '{topic}'"),
                );
                ext.add.push(format!(
                    "<zeebe:taskDefinition type=\"{}\" />",
                    escape(topic)
                ));
            } else if let Some(e) = camunda_attr(node, "expression") {
                w.drop_attr(node, "expression");
                let inner = job_type(e);
                if matches!(inner.as_str(), "true" | "false" | "null" | "") && tag == "serviceTask"
                {
                    rename(w, node, &format!("{bpmn}task"));
                    w.note(node, false, format!("camunda:expression '{e}' does nothing: the service task became a task that passes through"));
                } else {
                    let t = inner.split('(').next().unwrap_or(&inner).to_owned();
                    w.note(node, true, format!("camunda:expression '{e}' calls Java; it became job type '{t}': implement that job in the service"));
                    ext.add
                        .push(format!("<zeebe:taskDefinition type=\"{}\" />", escape(&t)));
                }
            }
            if let Some(v) = camunda_attr(node, "resultVariable") {
                w.drop_attr(node, "resultVariable");
                w.note(node, true, format!("camunda:resultVariable '{v}': return the value as a job result variable named '{v}'"));
            }
        }
        "userTask" => {
            let mut assignment = Vec::new();
            for (c, z) in [
                ("assignee", "assignee"),
                ("candidateGroups", "candidateGroups"),
                ("candidateUsers", "candidateUsers"),
            ] {
                if let Some(v) = camunda_attr(node, c) {
                    w.drop_attr(node, c);
                    let v = feel_or_text(w, node, v);
                    assignment.push(format!("{z}=\"{}\"", escape(&v)));
                }
            }
            if !assignment.is_empty() {
                ext.add.push(format!(
                    "<zeebe:assignmentDefinition {} />",
                    assignment.join(" ")
                ));
                w.note(
                    node,
                    false,
                    "assignment moved to zeebe:assignmentDefinition",
                );
            }
            if let Some(f) = camunda_attr(node, "formKey") {
                w.drop_attr(node, "formKey");
                ext.add.push(format!(
                    "<zeebe:formDefinition formKey=\"{}\" />",
                    escape(f)
                ));
                w.note(node, false, "camunda:formKey moved to zeebe:formDefinition");
            }
        }
        "messageEventDefinition" => {
            // A message throw or end event whose message a delegate sends: a job on the event.
            if let Some(parent) = node.parent_element() {
                let delegate = camunda_attr(node, "delegateExpression")
                    .map(job_type)
                    .or_else(|| camunda_attr(node, "class").map(str::to_owned));
                if let Some(t) = delegate {
                    w.drop_attr(node, "delegateExpression");
                    w.drop_attr(node, "class");
                    w.note(
                        parent,
                        false,
                        format!("the message delegate became job type '{t}' on the event"),
                    );
                    let mut pext = Extensions::default();
                    pext.add
                        .push(format!("<zeebe:taskDefinition type=\"{}\" />", escape(&t)));
                    extensions(w, parent, bpmn, &pext);
                }
            }
        }
        "conditionExpression" => {
            if let Some(t) = node.first_child().filter(|c| c.is_text()) {
                let text = t.text().unwrap_or_default();
                if node.attribute("language").is_some() {
                    w.note(
                        node.parent_element().unwrap_or(node),
                        true,
                        "a script condition: rewrite it as a FEEL expression",
                    );
                } else if text.trim().starts_with("${") || text.trim().starts_with("#{") {
                    match juel::to_feel(text) {
                        Ok(feel) => {
                            w.replace(t.range(), escape(&format!("={feel}")));
                            w.note(
                                node.parent_element().unwrap_or(node),
                                false,
                                format!("condition '{}' became '={feel}'", text.trim()),
                            );
                        }
                        Err(e) => w.note(node.parent_element().unwrap_or(node), true, e),
                    }
                }
            }
        }
        "timeDuration" | "timeDate" | "timeCycle" => {
            if let Some(t) = node.first_child().filter(|c| c.is_text()) {
                let text = t.text().unwrap_or_default().trim();
                let owner = node
                    .ancestors()
                    .find(|a| a.attribute("id").is_some())
                    .unwrap_or(node);
                if text.starts_with("${") || text.starts_with("#{") {
                    match juel::to_feel(text) {
                        Ok(feel) => {
                            w.replace(t.range(), escape(&format!("={feel}")));
                            w.note(owner, false, format!("timer '{text}' became '={feel}'"));
                        }
                        Err(e) => w.note(owner, true, e),
                    }
                } else if let Some(fixed) = days_in_time_part(text) {
                    w.replace(t.range(), fixed.clone());
                    w.note(
                        owner,
                        false,
                        format!("duration '{text}' became '{fixed}' (days go before the T)"),
                    );
                }
            }
        }
        "callActivity" => call_activity(w, node, &mut ext),
        "multiInstanceLoopCharacteristics" => multi_instance(w, node, &mut ext),
        "message" if options.correlation_key.is_some() => {
            let has = node.descendants().any(|d| {
                d.tag_name().namespace() == Some(ZEEBE) && d.tag_name().name() == "subscription"
            });
            if !has && let Some(key) = &options.correlation_key {
                let mut mext = Extensions::default();
                mext.add.push(format!(
                    "<zeebe:subscription correlationKey=\"{}\" />",
                    escape(key)
                ));
                extensions(w, node, bpmn, &mext);
                w.note(node, false, format!("correlation key '{key}' added"));
            }
            return;
        }
        _ => {}
    }
    // Execution listeners: on none throw and end events they did the event's work; elsewhere
    // they are left for a person.
    let listeners: Vec<Node<'_, '_>> = node
        .children()
        .filter(|c| {
            c.tag_name().namespace() == Some(BPMN) && c.tag_name().name() == "extensionElements"
        })
        .flat_map(|e| e.children())
        .filter(|c| {
            c.tag_name().namespace() == Some(CAMUNDA) && c.tag_name().name() == "executionListener"
        })
        .collect();
    if !listeners.is_empty() {
        ext.drop_camunda = true;
        let has_definition = node
            .children()
            .any(|c| c.tag_name().name().ends_with("EventDefinition"));
        for l in &listeners {
            let delegate = l
                .attribute("delegateExpression")
                .map(job_type)
                .or_else(|| l.attribute("class").map(str::to_owned));
            let event = l.attribute("event").unwrap_or("start");
            match (tag, has_definition, delegate) {
                ("intermediateThrowEvent" | "endEvent", false, Some(t)) if ext.add.is_empty() => {
                    ext.add
                        .push(format!("<zeebe:taskDefinition type=\"{}\" />", escape(&t)));
                    add_child(w, node, &format!("<{bpmn}messageEventDefinition />"));
                    w.note(
                        node,
                        false,
                        format!("its {event} listener became a message event with job type '{t}'"),
                    );
                }
                _ => {
                    w.note(*l, true, format!("a {event} execution listener was removed: flowmesh runs no listeners; do its work in a job"));
                }
            }
        }
    }
    for other in node
        .children()
        .filter(|c| {
            c.tag_name().namespace() == Some(BPMN) && c.tag_name().name() == "extensionElements"
        })
        .flat_map(|e| e.children())
        .filter(|c| {
            c.tag_name().namespace() == Some(CAMUNDA)
                && c.tag_name().name() != "executionListener"
                // A call activity's variable passing is translated above.
                && !(tag == "callActivity" && matches!(c.tag_name().name(), "in" | "out"))
        })
    {
        ext.drop_camunda = true;
        w.note(
            other,
            true,
            format!(
                "camunda:{} was removed: translate it by hand (zeebe:ioMapping for inputOutput)",
                other.tag_name().name()
            ),
        );
    }
    if !ext.add.is_empty() || ext.drop_camunda {
        extensions(w, node, bpmn, &ext);
    }
}

/// A Camunda 7 call activity: `calledElement` and its binding become `zeebe:calledElement`;
/// `camunda:in`/`camunda:out` become the propagate flags (`variables="all"`) and input/output
/// mappings. Camunda 7 passes nothing unless told, Zeebe everything: the flags say which.
fn call_activity(w: &mut Work<'_>, node: Node<'_, '_>, ext: &mut Extensions) {
    let Some(called) = node.attribute("calledElement") else {
        w.note(
            node,
            true,
            "the call activity names no calledElement: add the process id to call",
        );
        return;
    };
    let passing: Vec<Node<'_, '_>> = node
        .children()
        .filter(|c| {
            c.tag_name().namespace() == Some(BPMN) && c.tag_name().name() == "extensionElements"
        })
        .flat_map(|e| e.children())
        .filter(|c| {
            c.tag_name().namespace() == Some(CAMUNDA) && matches!(c.tag_name().name(), "in" | "out")
        })
        .collect();
    let all = |dir: &str| {
        passing
            .iter()
            .any(|c| c.tag_name().name() == dir && c.attribute("variables") == Some("all"))
    };
    let process_id = if called.starts_with("${") || called.starts_with("#{") {
        feel_or_text(w, node, called)
    } else {
        called.to_owned()
    };
    let mut attrs = format!(
        "processId=\"{}\" propagateAllParentVariables=\"{}\" propagateAllChildVariables=\"{}\"",
        escape(&process_id),
        all("in"),
        all("out")
    );
    match camunda_attr(node, "calledElementBinding") {
        None | Some("latest") => {}
        Some("deployment") => attrs.push_str(" bindingType=\"deployment\""),
        Some("versionTag") => {
            if let Some(tag) = camunda_attr(node, "calledElementVersionTag") {
                attrs.push_str(&format!(
                    " bindingType=\"versionTag\" versionTag=\"{}\"",
                    escape(tag)
                ));
            }
        }
        Some(other) => w.note(
            node,
            true,
            format!("camunda:calledElementBinding '{other}' has no Zeebe equivalent: the latest version is called; use a version tag"),
        ),
    }
    for a in [
        "calledElementBinding",
        "calledElementVersionTag",
        "calledElementVersion",
    ] {
        w.drop_attr(node, a);
    }
    ext.add.push(format!("<zeebe:calledElement {attrs} />"));
    w.note(
        node,
        false,
        format!("calledElement '{called}' became zeebe:calledElement"),
    );
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for c in &passing {
        if c.attribute("variables").is_some() {
            continue;
        }
        if c.attribute("businessKey").is_some() {
            w.note(
                *c,
                true,
                "camunda:in businessKey: pass the business key as a variable",
            );
            continue;
        }
        let source = match (c.attribute("source"), c.attribute("sourceExpression")) {
            (Some(s), _) => Some(format!("= {s}")),
            (None, Some(e)) => match juel::to_feel(e) {
                Ok(f) => Some(format!("= {f}")),
                Err(msg) => {
                    w.note(*c, true, msg);
                    None
                }
            },
            (None, None) => None,
        };
        let (Some(source), Some(target)) = (source, c.attribute("target")) else {
            continue;
        };
        let mapping = format!(
            "<zeebe:{} source=\"{}\" target=\"{}\" />",
            if c.tag_name().name() == "in" {
                "input"
            } else {
                "output"
            },
            escape(&source),
            escape(target)
        );
        if c.tag_name().name() == "in" {
            inputs.push(mapping);
        } else {
            outputs.push(mapping);
        }
    }
    if !passing.is_empty() {
        ext.drop_camunda = true;
        w.note(
            node,
            false,
            "camunda:in/out became the propagate flags and zeebe:ioMapping",
        );
    }
    if !inputs.is_empty() || !outputs.is_empty() {
        ext.add.push(format!(
            "<zeebe:ioMapping>{}{}</zeebe:ioMapping>",
            inputs.concat(),
            outputs.concat()
        ));
    }
}

/// Camunda 7 multi-instance: `camunda:collection`/`elementVariable` or `loopCardinality` become
/// `zeebe:loopCharacteristics`; a JUEL completion condition becomes FEEL with Zeebe's counter
/// names.
fn multi_instance(w: &mut Work<'_>, node: Node<'_, '_>, ext: &mut Extensions) {
    let owner = node.parent_element().unwrap_or(node);
    let has_zeebe = node.descendants().any(|d| {
        d.tag_name().namespace() == Some(ZEEBE) && d.tag_name().name() == "loopCharacteristics"
    });
    if !has_zeebe {
        let collection = match camunda_attr(node, "collection") {
            Some(c) if c.starts_with("${") || c.starts_with("#{") => {
                Some(feel_or_text(w, owner, c))
            }
            Some(c) => Some(format!("= {c}")),
            None => bpmn_child_text(node, "loopCardinality").map(|n| {
                let n = if n.starts_with("${") || n.starts_with("#{") {
                    juel::to_feel(n).unwrap_or_else(|_| n.to_owned())
                } else {
                    n.to_owned()
                };
                format!("= for i in 1..({n}) return i")
            }),
        };
        match collection {
            Some(c) => {
                let mut attrs = format!("inputCollection=\"{}\"", escape(&c));
                if let Some(e) = camunda_attr(node, "elementVariable") {
                    attrs.push_str(&format!(" inputElement=\"{}\"", escape(e)));
                }
                ext.add.push(format!("<zeebe:loopCharacteristics {attrs} />"));
                w.drop_attr(node, "collection");
                w.drop_attr(node, "elementVariable");
                w.note(owner, false, format!("multi-instance over '{c}' became zeebe:loopCharacteristics"));
            }
            None => w.note(owner, true, "multi-instance without collection or cardinality: add zeebe:loopCharacteristics inputCollection"),
        }
    }
    let condition = node.children().find(|c| {
        c.tag_name().namespace() == Some(BPMN) && c.tag_name().name() == "completionCondition"
    });
    if let Some(t) = condition
        .and_then(|c| c.first_child())
        .filter(|t| t.is_text())
    {
        let text = t.text().unwrap_or_default().trim();
        if text.starts_with("${") || text.starts_with("#{") {
            match juel::to_feel(text) {
                Ok(feel) => {
                    let feel = feel
                        .replace("nrOfInstances", "numberOfInstances")
                        .replace("nrOfActiveInstances", "numberOfActiveInstances")
                        .replace("nrOfCompletedInstances", "numberOfCompletedInstances");
                    w.replace(t.range(), escape(&format!("= {feel}")));
                    w.note(
                        owner,
                        false,
                        format!("completion condition '{text}' became '= {feel}'"),
                    );
                }
                Err(e) => w.note(owner, true, e),
            }
        }
    }
}

/// The text of a BPMN child element, trimmed.
fn bpmn_child_text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.tag_name().namespace() == Some(BPMN) && c.tag_name().name() == name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// `PT7D` → `P7D` (Camunda 7 accepted days after the T).
fn days_in_time_part(text: &str) -> Option<String> {
    let rest = text.strip_prefix("PT")?;
    let (days, after) = rest.split_once('D')?;
    if days.is_empty() || !days.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(if after.is_empty() {
        format!("P{days}D")
    } else {
        format!("P{days}DT{after}")
    })
}

/// An assignee expression as FEEL, or the text as it is.
fn feel_or_text(w: &mut Work<'_>, node: Node<'_, '_>, v: &str) -> String {
    if v.starts_with("${") || v.starts_with("#{") {
        match juel::to_feel(v) {
            Ok(f) => format!("={f}"),
            Err(e) => {
                w.note(node, true, e);
                v.to_owned()
            }
        }
    } else {
        v.to_owned()
    }
}

/// Writes `ext` into the element's extension elements: the existing block is rebuilt (its
/// non-camunda children kept in order), or a new one opens the element's content.
fn extensions(w: &mut Work<'_>, node: Node<'_, '_>, bpmn: &str, ext: &Extensions) {
    let existing = node.children().find(|c| {
        c.tag_name().namespace() == Some(BPMN) && c.tag_name().name() == "extensionElements"
    });
    let indent = indent_of(w.src, node) + "  ";
    let mut inner = String::new();
    if let Some(e) = existing {
        for c in e.children().filter(|c| c.is_element()) {
            if ext.drop_camunda && c.tag_name().namespace() == Some(CAMUNDA) {
                continue;
            }
            inner.push_str(&format!("\n{indent}  {}", &w.src[c.range()]));
        }
    }
    for a in &ext.add {
        inner.push_str(&format!("\n{indent}  {a}"));
    }
    let block = if inner.is_empty() {
        String::new()
    } else {
        format!("<{bpmn}extensionElements>{inner}\n{indent}</{bpmn}extensionElements>")
    };
    match existing {
        Some(e) if block.is_empty() => {
            // Nothing left in it: the block goes with its line.
            let r = e.range();
            let start = w.src[..r.start].rfind('\n').map_or(r.start, |i| i);
            w.replace(start..r.end, "");
        }
        Some(e) => w.replace(e.range(), block),
        None if !block.is_empty() => open_with(w, node, &format!("\n{indent}{block}")),
        None => {}
    }
}

/// Adds `child` as the element's last child.
fn add_child(w: &mut Work<'_>, node: Node<'_, '_>, child: &str) {
    let indent = indent_of(w.src, node);
    let r = node.range();
    if w.src[r.clone()].ends_with("/>") {
        let (head, body, tail) = opened(w, node);
        let body = format!("{body}\n{indent}  {child}");
        w.replace(r.end - 2..r.end, format!("{head}{body}{tail}"));
    } else {
        let close = r.end - format!("</{}>", qname(w.src, node)).len();
        w.replace(close..close, format!("  {child}\n{indent}"));
    }
}

/// Inserts `content` at the start of the element's content, opening a self-closing element.
fn open_with(w: &mut Work<'_>, node: Node<'_, '_>, content: &str) {
    let r = node.range();
    if w.src[r.clone()].ends_with("/>") {
        let (head, body, tail) = opened(w, node);
        w.replace(r.end - 2..r.end, format!("{head}{content}{body}{tail}"));
    } else {
        let gt = start_tag_end(w.src, node);
        w.replace(gt..gt, content.to_owned());
    }
}

/// A self-closing element's `/>`, as opened so far: `>`, the content already added (an
/// earlier edit of the same `/>` is taken back), and the end tag.
fn opened(w: &mut Work<'_>, node: Node<'_, '_>) -> (String, String, String) {
    let r = node.range();
    let tail = format!("\n{}</{}>", indent_of(w.src, node), qname(w.src, node));
    let body = w
        .edits
        .iter()
        .position(|e| e.range == (r.end - 2..r.end))
        .map(|i| w.edits.remove(i).text)
        .map(|t| {
            t.strip_prefix('>')
                .and_then(|t| t.strip_suffix(tail.as_str()))
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    (">".to_owned(), body, tail)
}

/// The byte after the `>` that ends the element's start tag.
fn start_tag_end(src: &str, node: Node<'_, '_>) -> usize {
    let r = node.range();
    let bytes = src.as_bytes();
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate().take(r.end).skip(r.start) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return i + 1,
            _ => {}
        }
    }
    r.end
}

/// The element's name as written (`bpmn:serviceTask`).
fn qname<'s>(src: &'s str, node: Node<'_, '_>) -> &'s str {
    let start = node.range().start + 1;
    let end = src[start..]
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .map_or(src.len(), |i| start + i);
    &src[start..end]
}

/// Renames an element (start and end tag).
fn rename(w: &mut Work<'_>, node: Node<'_, '_>, to: &str) {
    let r = node.range();
    let name = qname(w.src, node).to_owned();
    w.replace(r.start + 1..r.start + 1 + name.len(), to.to_owned());
    let end_tag = format!("</{name}>");
    if w.src[r.clone()].ends_with(&end_tag) {
        w.replace(r.end - end_tag.len() + 2..r.end - 1, to.to_owned());
    }
}

/// The whitespace before the element on its line.
fn indent_of(src: &str, node: Node<'_, '_>) -> String {
    let start = node.range().start;
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    src[line_start..start]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect()
}
