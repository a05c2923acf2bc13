//! Builds the model from the XML tree: registers every flow node in an arena, resolves flows,
//! attachments and references, and turns each element's XML into its executable [`Kind`].
//! Whatever keeps an element from running becomes a [`Problem`] on its process; the graph is
//! built anyway.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use roxmltree::{Document, Node};

use super::events::{self, EventDef};
use super::xml::{
    BPMN, LineIndex, attr, bool_attr, bpmn_children, is_bpmn, ref_attr, strip_prefix, text,
};
use super::{Error, diagram, flowmesh, zeebe};
use crate::feel::{Expression, Value};
use crate::model::{
    Boundary, BoundaryTrigger, CallActivity, CallBinding, CatchTrigger, Collaboration, Definitions,
    Element, ElementIdx, EndResult, ErrorThrow, EscalationThrow, EventSubProcess, FlowIdx, JobDef,
    Kind, Lane, Mapping, MessageFlow, MessagePublish, MessageRef, MessageThrow, MultiInstance,
    Notation, Participant, Problem, ProblemKind, Process, Script, SequenceFlow, SignalRef,
    StartTrigger, TaskKind, ThrowResult, TimerDef, USER_TASK_JOB_TYPE, validate,
};

pub(crate) fn build(doc: &Document<'_>, lines: &LineIndex<'_>) -> Result<Definitions, Error> {
    let root = doc.root_element();
    if !is_bpmn(root, "definitions") {
        let pos = lines.node_pos(root);
        let found = match root.tag_name().namespace() {
            Some(ns) => format!("{} xmlns=\"{ns}\"", root.tag_name().name()),
            None => root.tag_name().name().to_owned(),
        };
        return Err(Error::NotBpmn {
            line: pos.line,
            col: pos.col,
            found,
        });
    }
    let refs = Refs::read(root);
    let found = flowmesh::bindings(root, lines);
    let processes = bpmn_children(root, "process")
        .map(|p| Arc::new(ProcessBuilder::new(p, &refs, lines).build()))
        .collect();
    Ok(Definitions {
        id: attr(root, "id").map(str::to_owned),
        exporter: attr(root, "exporter").map(str::to_owned),
        processes,
        collaboration: bpmn_children(root, "collaboration")
            .next()
            .map(|c| collaboration(c, lines)),
        diagram: diagram::read(root),
        bindings: found.http,
        event_bindings: found.events,
        binding_problems: found.problems,
    })
}

/// Top-level definitions that elements refer to.
/// What a throw event refers to for its code.
/// A trigger a catching event waits for, before it becomes a boundary or start trigger.
enum Caught {
    Message(MessageRef),
    Timer(TimerDef),
    Signal(SignalRef),
    Error(Option<String>),
    Escalation(Option<String>),
    Conditional(Expression),
}

#[derive(Clone, Copy)]
enum Thrown {
    Error,
    Escalation,
}

struct Refs<'a> {
    messages: HashMap<&'a str, Node<'a, 'a>>,
    errors: HashMap<&'a str, Node<'a, 'a>>,
    escalations: HashMap<&'a str, Node<'a, 'a>>,
    signals: HashMap<&'a str, Node<'a, 'a>>,
}

impl<'a> Refs<'a> {
    fn read(root: Node<'a, 'a>) -> Refs<'a> {
        let by_id = |name: &'static str| {
            bpmn_children(root, name)
                .filter_map(|n| Some((attr(n, "id")?, n)))
                .collect::<HashMap<_, _>>()
        };
        Refs {
            messages: by_id("message"),
            errors: by_id("error"),
            escalations: by_id("escalation"),
            signals: by_id("signal"),
        }
    }
}

fn collaboration(node: Node<'_, '_>, lines: &LineIndex<'_>) -> Collaboration {
    Collaboration {
        id: attr(node, "id").unwrap_or_default().to_owned(),
        participants: bpmn_children(node, "participant")
            .map(|p| Participant {
                id: attr(p, "id").unwrap_or_default().to_owned(),
                name: attr(p, "name").map(str::to_owned),
                process_id: ref_attr(p, "processRef").map(str::to_owned),
                pos: lines.node_pos(p),
            })
            .collect(),
        message_flows: bpmn_children(node, "messageFlow")
            .map(|m| MessageFlow {
                id: attr(m, "id").unwrap_or_default().to_owned(),
                name: attr(m, "name").map(str::to_owned),
                source: ref_attr(m, "sourceRef").unwrap_or_default().to_owned(),
                target: ref_attr(m, "targetRef").unwrap_or_default().to_owned(),
                message: ref_attr(m, "messageRef").map(str::to_owned),
                pos: lines.node_pos(m),
            })
            .collect(),
    }
}

/// BPMN flow-node tags, with the name flowmesh uses for them in messages.
const FLOW_NODES: &[(&str, &str)] = &[
    ("startEvent", "start event"),
    ("endEvent", "end event"),
    ("intermediateCatchEvent", "intermediate catch event"),
    ("intermediateThrowEvent", "intermediate throw event"),
    ("boundaryEvent", "boundary event"),
    ("task", "task"),
    ("serviceTask", "service task"),
    ("sendTask", "send task"),
    ("receiveTask", "receive task"),
    ("userTask", "user task"),
    ("manualTask", "manual task"),
    ("scriptTask", "script task"),
    ("businessRuleTask", "business rule task"),
    ("exclusiveGateway", "exclusive gateway"),
    ("parallelGateway", "parallel gateway"),
    ("eventBasedGateway", "event-based gateway"),
    ("inclusiveGateway", "inclusive gateway"),
    ("complexGateway", "complex gateway"),
    ("subProcess", "subprocess"),
    ("transaction", "transaction"),
    ("adHocSubProcess", "ad-hoc subprocess"),
    ("callActivity", "call activity"),
];

/// The `multiInstanceLoopCharacteristics` of an activity.
fn multi_instance<'a>(node: Node<'a, 'a>) -> Option<Node<'a, 'a>> {
    bpmn_children(node, "multiInstanceLoopCharacteristics").next()
}

fn flow_node_tag(node: Node<'_, '_>) -> Option<&'static str> {
    if node.tag_name().namespace() != Some(BPMN) {
        return None;
    }
    let name = node.tag_name().name();
    FLOW_NODES
        .iter()
        .find(|(tag, _)| *tag == name)
        .map(|(tag, _)| *tag)
}

fn describe(tag: &str) -> &'static str {
    FLOW_NODES
        .iter()
        .find(|(t, _)| *t == tag)
        .map_or("element", |(_, d)| d)
}

struct ProcessBuilder<'a> {
    node: Node<'a, 'a>,
    refs: &'a Refs<'a>,
    lines: &'a LineIndex<'a>,
    elements: Vec<Element>,
    nodes: Vec<Node<'a, 'a>>,
    flows: Vec<SequenceFlow>,
    problems: Vec<Problem>,
    index: HashMap<String, ElementIdx>,
    flow_index: HashMap<String, FlowIdx>,
    raw_flows: Vec<(Node<'a, 'a>, ElementIdx)>,
    /// Association source id → target id (compensation handlers hang off boundary events so).
    associations: HashMap<&'a str, &'a str>,
    lanes: Vec<(String, Option<String>, Vec<&'a str>)>,
    /// Inner elements of multi-instance bodies.
    inner: HashSet<ElementIdx>,
}

impl<'a> ProcessBuilder<'a> {
    fn new(node: Node<'a, 'a>, refs: &'a Refs<'a>, lines: &'a LineIndex<'a>) -> ProcessBuilder<'a> {
        ProcessBuilder {
            node,
            refs,
            lines,
            elements: Vec::new(),
            nodes: Vec::new(),
            flows: Vec::new(),
            problems: Vec::new(),
            index: HashMap::new(),
            flow_index: HashMap::new(),
            raw_flows: Vec::new(),
            associations: HashMap::new(),
            lanes: Vec::new(),
            inner: HashSet::new(),
        }
    }

    fn problem(
        &mut self,
        kind: ProblemKind,
        node: Node<'_, '_>,
        element: &str,
        message: impl Into<String>,
    ) {
        let pos = self.lines.node_pos(node);
        self.problems
            .push(Problem::new(kind, pos, element, message));
    }

    fn build(mut self) -> Process {
        let id = attr(self.node, "id").unwrap_or("process").to_owned();
        let pos = self.lines.node_pos(self.node);
        self.elements.push(Element {
            idx: Process::ROOT,
            id: id.clone(),
            name: attr(self.node, "name").map(str::to_owned),
            pos,
            kind: Kind::Process,
            scope: None,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            default_flow: None,
            boundaries: Vec::new(),
            children: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            for_compensation: false,
            tag: "process",
            notation: Notation::default(),
        });
        self.nodes.push(self.node);
        self.index.insert(id.clone(), Process::ROOT);
        self.register(self.node, Process::ROOT);
        self.resolve_flows();
        for i in 1..self.elements.len() {
            let idx = ElementIdx(i as u32);
            let node = self.nodes[i];
            let kind = self.kind(idx, node);
            self.elements[i].kind = kind;
            // A body's mappings belong to its inner activity: they run once per item.
            if !matches!(self.elements[i].kind, Kind::MultiInstance(_)) {
                self.mappings(idx, node);
            }
        }
        let lanes = std::mem::take(&mut self.lanes)
            .into_iter()
            .map(|(id, name, refs)| Lane {
                id,
                name,
                elements: refs
                    .iter()
                    .filter_map(|r| self.index.get(*r).copied())
                    .collect(),
            })
            .collect();
        let mut process = Process {
            id,
            name: attr(self.node, "name").map(str::to_owned),
            executable: bool_attr(self.node, "isExecutable", false),
            pos,
            elements: self.elements,
            flows: self.flows,
            lanes,
            version_tag: zeebe::extension(self.node, "versionTag")
                .and_then(|v| attr(v, "value"))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            problems: self.problems,
            index: self.index,
            flow_index: self.flow_index,
        };
        let more = validate(&process);
        process.problems.extend(more);
        process.problems.sort_by_key(|p| (p.pos.line, p.pos.col));
        process
    }

    /// Pass 1: every flow node of a container (recursively) gets an arena slot.
    fn register(&mut self, container: Node<'a, 'a>, scope: ElementIdx) {
        for child in container.children().filter(|c| c.is_element()) {
            if is_bpmn(child, "sequenceFlow") {
                self.raw_flows.push((child, scope));
                continue;
            }
            if is_bpmn(child, "association") {
                if let (Some(s), Some(t)) =
                    (ref_attr(child, "sourceRef"), ref_attr(child, "targetRef"))
                {
                    self.associations.insert(s, t);
                }
                continue;
            }
            if is_bpmn(child, "laneSet") {
                self.read_lanes(child);
                continue;
            }
            let Some(tag) = flow_node_tag(child) else {
                continue;
            };
            let Some(id) = attr(child, "id") else {
                self.problem(
                    ProblemKind::InvalidStructure,
                    child,
                    tag,
                    format!("a {} has no id", describe(tag)),
                );
                continue;
            };
            if self.index.contains_key(id) {
                self.problem(
                    ProblemKind::DuplicateId,
                    child,
                    id,
                    "another element has the same id",
                );
                continue;
            }
            let idx = self.push_element(child, id, tag, scope);
            self.index.insert(id.to_owned(), idx);
            // A multi-instance activity is a body with the activity inside it: the inner
            // element (same id) is what each item runs.
            let inner = if multi_instance(child).is_some() {
                let inner = self.push_element(child, id, tag, idx);
                self.inner.insert(inner);
                inner
            } else {
                idx
            };
            if matches!(tag, "subProcess" | "transaction" | "adHocSubProcess") {
                self.register(child, inner);
            }
        }
    }

    /// Gives a flow node an arena slot in container `scope`.
    fn push_element(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        tag: &'static str,
        scope: ElementIdx,
    ) -> ElementIdx {
        let idx = ElementIdx(self.elements.len() as u32);
        self.elements.push(Element {
            idx,
            id: id.to_owned(),
            name: attr(node, "name").map(str::to_owned),
            pos: self.lines.node_pos(node),
            kind: Kind::Unsupported("unresolved"),
            scope: Some(scope),
            incoming: Vec::new(),
            outgoing: Vec::new(),
            default_flow: None,
            boundaries: Vec::new(),
            children: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            for_compensation: bool_attr(node, "isForCompensation", false),
            tag,
            notation: events::notation(node),
        });
        self.nodes.push(node);
        self.elements[scope.0 as usize].children.push(idx);
        idx
    }

    fn read_lanes(&mut self, lane_set: Node<'a, 'a>) {
        for lane in bpmn_children(lane_set, "lane") {
            let refs: Vec<&'a str> = bpmn_children(lane, "flowNodeRef")
                .filter_map(text)
                .map(strip_prefix)
                .collect();
            self.lanes.push((
                attr(lane, "id").unwrap_or_default().to_owned(),
                attr(lane, "name").map(str::to_owned),
                refs,
            ));
            for child_set in bpmn_children(lane, "childLaneSet") {
                self.read_lanes(child_set);
            }
        }
    }

    /// Pass 2: sequence flows between registered elements of the same container.
    fn resolve_flows(&mut self) {
        for (node, scope) in std::mem::take(&mut self.raw_flows) {
            let Some(id) = attr(node, "id") else {
                self.problem(
                    ProblemKind::InvalidStructure,
                    node,
                    "sequenceFlow",
                    "a sequence flow has no id",
                );
                continue;
            };
            if self.flow_index.contains_key(id) || self.index.contains_key(id) {
                self.problem(
                    ProblemKind::DuplicateId,
                    node,
                    id,
                    "another element has the same id",
                );
                continue;
            }
            let mut ends = [None, None];
            for (slot, name) in ends.iter_mut().zip(["sourceRef", "targetRef"]) {
                match ref_attr(node, name) {
                    None => self.problem(ProblemKind::InvalidReference, node, id, format!("sequence flow has no {name}")),
                    Some(r) => match self.index.get(r).copied() {
                        Some(e) if self.elements[e.0 as usize].scope == Some(scope) => *slot = Some(e),
                        Some(_) => self.problem(
                            ProblemKind::InvalidStructure,
                            node,
                            id,
                            format!("sequence flow {name} '{r}' is in another (sub)process; flows cannot cross a subprocess border"),
                        ),
                        None => self.problem(
                            ProblemKind::InvalidReference,
                            node,
                            id,
                            format!("sequence flow {name} '{r}' names no element of this process"),
                        ),
                    },
                }
            }
            let [Some(source), Some(target)] = ends else {
                continue;
            };
            let condition = match bpmn_children(node, "conditionExpression").next() {
                None => None,
                Some(c) => match text(c) {
                    None => None,
                    Some(t) => match zeebe::condition(t) {
                        Ok(e) => Some(e),
                        Err(msg) => {
                            self.problem(ProblemKind::InvalidExpression, c, id, msg);
                            None
                        }
                    },
                },
            };
            let idx = FlowIdx(self.flows.len() as u32);
            self.flows.push(SequenceFlow {
                idx,
                id: id.to_owned(),
                name: attr(node, "name").map(str::to_owned),
                pos: self.lines.node_pos(node),
                source,
                target,
                condition,
            });
            self.flow_index.insert(id.to_owned(), idx);
            self.elements[source.0 as usize].outgoing.push(idx);
            self.elements[target.0 as usize].incoming.push(idx);
        }
        for i in 0..self.elements.len() {
            let node = self.nodes[i];
            if let Some(default) = ref_attr(node, "default") {
                match self.flow_index.get(default).copied() {
                    Some(f) if self.flows[f.0 as usize].source.0 as usize == i => {
                        self.elements[i].default_flow = Some(f);
                    }
                    _ => {
                        let id = self.elements[i].id.clone();
                        self.problem(
                            ProblemKind::InvalidReference,
                            node,
                            &id,
                            format!("default flow '{default}' is not an outgoing sequence flow of this element"),
                        );
                    }
                }
            }
        }
    }

    /// Pass 3: what each element does.
    fn kind(&mut self, idx: ElementIdx, node: Node<'a, 'a>) -> Kind {
        let tag = self.elements[idx.0 as usize].tag;
        let id = self.elements[idx.0 as usize].id.clone();
        if bpmn_children(node, "standardLoopCharacteristics")
            .next()
            .is_some()
        {
            return self.unsupported(node, &id, "loop activity");
        }
        if !self.inner.contains(&idx)
            && let Some(lc) = multi_instance(node)
        {
            return self.multi_instance(idx, node, lc, &id);
        }
        match tag {
            "startEvent" => self.start_event(idx, node, &id),
            "endEvent" => self.end_event(idx, node, &id),
            "intermediateCatchEvent" => self.catch_event(idx, node, &id),
            "intermediateThrowEvent" => self.throw_event(idx, node, &id),
            "boundaryEvent" => self.boundary_event(idx, node, &id),
            "serviceTask" | "sendTask" => match self.job(node, &id, true) {
                Some(job) => Kind::Task(TaskKind::Job(job)),
                None => Kind::Unsupported("task without job type"),
            },
            "businessRuleTask" => {
                if zeebe::extension(node, "calledDecision").is_some() {
                    return self.unsupported(
                        node,
                        &id,
                        "business rule task calling a DMN decision",
                    );
                }
                match self.job(node, &id, true) {
                    Some(job) => Kind::Task(TaskKind::Job(job)),
                    None => Kind::Unsupported("task without job type"),
                }
            }
            "userTask" => {
                let mut headers = zeebe::user_task_headers(node);
                headers.extend(zeebe::headers(node));
                Kind::Task(TaskKind::User(JobDef {
                    job_type: Expression::constant(Value::from(USER_TASK_JOB_TYPE)),
                    retries: Expression::constant(Value::from(1)),
                    headers,
                }))
            }
            "scriptTask" => self.script_task(node, &id),
            "receiveTask" => {
                let instantiate = bool_attr(node, "instantiate", false);
                match self.message(node, &id, ref_attr(node, "messageRef"), !instantiate) {
                    Some(message) => Kind::Task(TaskKind::Receive {
                        message,
                        instantiate,
                    }),
                    None => Kind::Unsupported("receive task without message"),
                }
            }
            "task" | "manualTask" => Kind::Task(TaskKind::PassThrough),
            "exclusiveGateway" => Kind::ExclusiveGateway,
            "parallelGateway" => Kind::ParallelGateway,
            "eventBasedGateway" => Kind::EventBasedGateway,
            "subProcess" => {
                if bool_attr(node, "triggeredByEvent", false) {
                    self.event_subprocess(idx, node, &id)
                } else {
                    Kind::SubProcess
                }
            }
            "inclusiveGateway" => Kind::InclusiveGateway,
            "complexGateway" => self.unsupported(node, &id, "complex gateway"),
            "transaction" => self.unsupported(node, &id, "transaction subprocess"),
            "adHocSubProcess" => self.unsupported(node, &id, "ad-hoc subprocess"),
            "callActivity" => self.call_activity(node, &id),
            _ => self.unsupported(node, &id, describe(tag)),
        }
    }

    /// The body of a multi-instance activity: `zeebe:loopCharacteristics` and the
    /// completion condition.
    fn multi_instance(
        &mut self,
        idx: ElementIdx,
        node: Node<'a, 'a>,
        lc: Node<'a, 'a>,
        id: &str,
    ) -> Kind {
        const ACTIVITIES: [&str; 10] = [
            "serviceTask",
            "sendTask",
            "userTask",
            "scriptTask",
            "businessRuleTask",
            "receiveTask",
            "task",
            "manualTask",
            "subProcess",
            "callActivity",
        ];
        let tag = self.elements[idx.0 as usize].tag;
        if !ACTIVITIES.contains(&tag) || bool_attr(node, "triggeredByEvent", false) {
            self.problem(
                ProblemKind::InvalidStructure,
                lc,
                id,
                format!(
                    "a {} cannot be multi-instance; only tasks, subprocesses and call activities can",
                    describe(tag)
                ),
            );
            return Kind::Unsupported("multi-instance on a non-activity");
        }
        let Some(inner) = self.elements[idx.0 as usize].children.first().copied() else {
            return Kind::Unsupported("multi-instance without inner activity");
        };
        let zl = zeebe::extension(lc, "loopCharacteristics");
        let Some(collection) = zl.and_then(|z| attr(z, "inputCollection")) else {
            let hint = if bpmn_children(lc, "loopCardinality").next().is_some() {
                " (loopCardinality is not read: write inputCollection=\"= for i in 1..n return i\" for n instances)"
            } else if lc.attributes().any(|a| a.name() == "collection") {
                " (camunda:collection is Camunda 7: `flowmesh migrate-model` translates it)"
            } else {
                ""
            };
            self.problem(
                ProblemKind::InvalidStructure,
                lc,
                id,
                format!(
                    "multi-instance activity has no input collection; add <zeebe:loopCharacteristics inputCollection=\"= items\" inputElement=\"item\"/> to its multiInstanceLoopCharacteristics{hint}"
                ),
            );
            return Kind::Unsupported("multi-instance without input collection");
        };
        let zl = zl.unwrap_or(lc);
        let mut failed = false;
        let mut compile = |this: &mut Self, what: &str, text: &str, at: Node<'_, '_>| {
            let compiled = if what == "completionCondition" {
                zeebe::condition(text)
            } else {
                zeebe::expression(text)
            };
            match compiled {
                Ok(e) => Some(e),
                Err(msg) => {
                    this.problem(
                        ProblemKind::InvalidExpression,
                        at,
                        id,
                        format!("{what}: {msg}"),
                    );
                    failed = true;
                    None
                }
            }
        };
        let input_collection = compile(self, "inputCollection", collection, zl);
        let output_element =
            attr(zl, "outputElement").and_then(|t| compile(self, "outputElement", t, zl));
        let completion_condition = bpmn_children(lc, "completionCondition")
            .next()
            .and_then(|c| text(c).map(|t| (t, c)))
            .and_then(|(t, c)| compile(self, "completionCondition", t, c));
        let name = |a: &str| {
            attr(zl, a)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let output_collection = name("outputCollection");
        if output_collection.is_some() != attr(zl, "outputElement").is_some() {
            self.problem(
                ProblemKind::InvalidStructure,
                zl,
                id,
                "outputCollection and outputElement go together: set both to collect a result per item, or neither",
            );
            failed = true;
        }
        match (failed, input_collection) {
            (false, Some(input_collection)) => Kind::MultiInstance(Box::new(MultiInstance {
                sequential: bool_attr(lc, "isSequential", false),
                input_collection,
                input_element: name("inputElement"),
                output_collection,
                output_element,
                completion_condition,
                inner,
            })),
            _ => Kind::Unsupported("invalid multi-instance"),
        }
    }

    /// A call activity: `zeebe:calledElement`.
    fn call_activity(&mut self, node: Node<'a, 'a>, id: &str) -> Kind {
        let Some(called) = zeebe::extension(node, "calledElement") else {
            self.problem(
                ProblemKind::InvalidStructure,
                node,
                id,
                "call activity names no process; add <zeebe:calledElement processId=\"...\"/>",
            );
            return Kind::Unsupported("call activity without called element");
        };
        let Some(process_id) = attr(called, "processId").filter(|p| !p.trim().is_empty()) else {
            self.problem(
                ProblemKind::InvalidStructure,
                called,
                id,
                "zeebe:calledElement has no processId; name the process to call",
            );
            return Kind::Unsupported("call activity without process id");
        };
        let process_id = match zeebe::expression(process_id) {
            Ok(e) => e,
            Err(msg) => {
                self.problem(
                    ProblemKind::InvalidExpression,
                    called,
                    id,
                    format!("processId: {msg}"),
                );
                return Kind::Unsupported("call activity with invalid process id");
            }
        };
        let binding = match attr(called, "bindingType").unwrap_or("latest") {
            "latest" => CallBinding::Latest,
            "deployment" => CallBinding::Deployment,
            "versionTag" => match attr(called, "versionTag")
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                Some(tag) => CallBinding::VersionTag(tag.to_owned()),
                None => {
                    self.problem(
                        ProblemKind::InvalidStructure,
                        called,
                        id,
                        "bindingType=\"versionTag\" needs a versionTag attribute naming the version to call",
                    );
                    return Kind::Unsupported("call activity without version tag");
                }
            },
            other => {
                self.problem(
                    ProblemKind::InvalidStructure,
                    called,
                    id,
                    format!("bindingType '{other}' is not one of latest, deployment, versionTag"),
                );
                return Kind::Unsupported("call activity with unknown binding");
            }
        };
        Kind::CallActivity(CallActivity {
            process_id,
            binding,
            propagate_child: bool_attr(called, "propagateAllChildVariables", true),
            propagate_parent: bool_attr(called, "propagateAllParentVariables", true),
        })
    }

    fn unsupported(&mut self, node: Node<'_, '_>, id: &str, what: &'static str) -> Kind {
        self.problem(
            ProblemKind::Unsupported,
            node,
            id,
            format!("{what} is not supported yet"),
        );
        Kind::Unsupported(what)
    }

    /// An event subprocess: one start event with a trigger; no flows in or out.
    fn event_subprocess(&mut self, idx: ElementIdx, node: Node<'a, 'a>, id: &str) -> Kind {
        let el = &self.elements[idx.0 as usize];
        let starts: Vec<ElementIdx> = el
            .children
            .iter()
            .copied()
            .filter(|c| self.elements[c.0 as usize].tag == "startEvent")
            .collect();
        if !el.incoming.is_empty() || !el.outgoing.is_empty() {
            self.problem(
                ProblemKind::InvalidStructure,
                node,
                id,
                "an event subprocess has no sequence flows in or out; its start event's trigger starts it",
            );
            return Kind::Unsupported("event subprocess with sequence flows");
        }
        let [start] = starts.as_slice() else {
            self.problem(
                ProblemKind::InvalidStructure,
                node,
                id,
                format!(
                    "an event subprocess has exactly one start event (with a message, timer, error, escalation or conditional trigger); this one has {}",
                    starts.len()
                ),
            );
            return Kind::Unsupported("event subprocess without one start event");
        };
        let start_node = self.nodes[start.0 as usize];
        Kind::EventSubProcess(EventSubProcess {
            start: *start,
            interrupting: bool_attr(start_node, "isInterrupting", true),
        })
    }

    fn start_event(&mut self, idx: ElementIdx, node: Node<'a, 'a>, id: &str) -> Kind {
        let scope = self.elements[idx.0 as usize].scope.unwrap_or(Process::ROOT);
        let in_subprocess = scope != Process::ROOT;
        let in_event_subprocess =
            bool_attr(self.nodes[scope.0 as usize], "triggeredByEvent", false);
        let defs = events::definitions(node);
        if in_event_subprocess {
            return self.event_subprocess_start(node, id, &defs);
        }
        let trigger = match defs.as_slice() {
            [] => StartTrigger::None,
            [_] if in_subprocess => {
                self.problem(
                    ProblemKind::InvalidStructure,
                    node,
                    id,
                    "a start event inside an embedded subprocess has no trigger; to start on an event, mark the subprocess triggeredByEvent (an event subprocess)",
                );
                return Kind::Unsupported("start event with a trigger inside a subprocess");
            }
            [EventDef::Message { message_ref }] => {
                match self.message(node, id, *message_ref, false) {
                    Some(m) => StartTrigger::Message(m),
                    None => return Kind::Unsupported("message start without message"),
                }
            }
            [EventDef::Signal { signal_ref }] => match self.signal(node, id, *signal_ref) {
                Some(s) => StartTrigger::Signal(s),
                None => return Kind::Unsupported("signal start without signal"),
            },
            [
                EventDef::Timer {
                    kind,
                    text,
                    node: tn,
                    ambiguous,
                },
            ] => match self.timer(*tn, id, *kind, *text, *ambiguous) {
                Some(t) if t.kind == crate::model::TimerKind::Duration => {
                    self.problem(
                            ProblemKind::InvalidTimer,
                            *tn,
                            id,
                            "a timer start event needs a timeDate or timeCycle; timeDuration has no reference point",
                        );
                    return Kind::Unsupported("timer start with duration");
                }
                Some(t) => StartTrigger::Timer(t),
                None => return Kind::Unsupported("invalid timer"),
            },
            [EventDef::Other(what)] => return self.unsupported(node, id, what),
            [_] => return self.unsupported(node, id, "this kind of start event"),
            _ => return self.unsupported(node, id, "start event with several triggers"),
        };
        Kind::StartEvent(trigger)
    }

    /// What a catching event waits for (`None`: the definition is no such trigger), read the
    /// same way for boundary events and event-subprocess starts; `Err` names why it cannot
    /// run (the problem is recorded).
    fn caught(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        def: &EventDef<'a>,
    ) -> Option<Result<Caught, &'static str>> {
        Some(match def {
            EventDef::Message { message_ref } => self
                .message(node, id, *message_ref, true)
                .map(Caught::Message)
                .ok_or("message event without message"),
            EventDef::Timer {
                kind,
                text,
                node: tn,
                ambiguous,
            } => self
                .timer(*tn, id, *kind, *text, *ambiguous)
                .map(Caught::Timer)
                .ok_or("invalid timer"),
            EventDef::Signal { signal_ref } => self
                .signal(node, id, *signal_ref)
                .map(Caught::Signal)
                .ok_or("signal event without signal"),
            EventDef::Error { error_ref } => self
                .caught_code(node, id, *error_ref, Thrown::Error)
                .map(Caught::Error)
                .ok_or("error event with unknown error"),
            EventDef::Escalation { escalation_ref } => self
                .caught_code(node, id, *escalation_ref, Thrown::Escalation)
                .map(Caught::Escalation)
                .ok_or("escalation event with unknown escalation"),
            EventDef::Conditional { condition } => self
                .conditional(node, id, *condition)
                .map(Caught::Conditional)
                .ok_or("conditional event without condition"),
            _ => return None,
        })
    }

    /// The start event of an event subprocess: what starts it while its container runs.
    fn event_subprocess_start(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        defs: &[EventDef<'a>],
    ) -> Kind {
        let interrupting = bool_attr(node, "isInterrupting", true);
        if let [def] = defs
            && let Some(caught) = self.caught(node, id, def)
        {
            let trigger = match caught {
                Err(why) => return Kind::Unsupported(why),
                Ok(Caught::Error(_)) if !interrupting => {
                    self.problem(
                        ProblemKind::InvalidStructure,
                        node,
                        id,
                        "an error start event always interrupts; remove isInterrupting=\"false\"",
                    );
                    return Kind::Unsupported("non-interrupting error start");
                }
                Ok(Caught::Message(m)) => StartTrigger::Message(m),
                Ok(Caught::Timer(t)) => StartTrigger::Timer(t),
                Ok(Caught::Signal(sig)) => StartTrigger::Signal(sig),
                Ok(Caught::Error(code)) => StartTrigger::Error(code),
                Ok(Caught::Escalation(code)) => StartTrigger::Escalation(code),
                Ok(Caught::Conditional(c)) => StartTrigger::Conditional(c),
            };
            return Kind::StartEvent(trigger);
        }
        match defs {
            [] => {
                self.problem(
                    ProblemKind::InvalidStructure,
                    node,
                    id,
                    "the start event of an event subprocess needs a trigger (message, timer, signal, error, escalation or conditional)",
                );
                Kind::Unsupported("event subprocess start without trigger")
            }
            [EventDef::Other(what)] => self.unsupported(node, id, what),
            [_] => self.unsupported(node, id, "this kind of event subprocess start"),
            _ => self.unsupported(node, id, "start event with several triggers"),
        }
    }

    fn end_event(&mut self, _idx: ElementIdx, node: Node<'a, 'a>, id: &str) -> Kind {
        let defs = events::definitions(node);
        let result = match defs.as_slice() {
            [] => EndResult::None,
            [EventDef::Message { message_ref }] => match self.message_throw(node, id, *message_ref)
            {
                Some(m) => EndResult::Message(m),
                None => return Kind::Unsupported("message end without job or message"),
            },
            [EventDef::Error { error_ref }] => match self.error_throw(node, id, *error_ref) {
                Some(e) => EndResult::Error(e),
                None => return Kind::Unsupported("error end without error code"),
            },
            [EventDef::Terminate] => EndResult::Terminate,
            [EventDef::Escalation { escalation_ref }] => {
                match self.escalation_throw(node, id, *escalation_ref) {
                    Some(e) => EndResult::Escalation(e),
                    None => return Kind::Unsupported("escalation end without escalation code"),
                }
            }
            [EventDef::Compensate { activity_ref }] => {
                EndResult::Compensation(self.compensation_target(node, id, *activity_ref))
            }
            [EventDef::Signal { signal_ref }] => match self.signal(node, id, *signal_ref) {
                Some(s) => EndResult::Signal(s),
                None => return Kind::Unsupported("signal end without signal"),
            },
            [EventDef::Other(what)] => return self.unsupported(node, id, what),
            [_] => return self.unsupported(node, id, "this kind of end event"),
            _ => return self.unsupported(node, id, "end event with several results"),
        };
        Kind::EndEvent(result)
    }

    fn catch_event(&mut self, idx: ElementIdx, node: Node<'a, 'a>, id: &str) -> Kind {
        let defs = events::definitions(node);
        let trigger = match defs.as_slice() {
            [EventDef::Link { name }] => {
                let Some(name) = name else {
                    self.problem(
                        ProblemKind::InvalidStructure,
                        node,
                        id,
                        "link catch event has no link name; give its linkEventDefinition a name",
                    );
                    return Kind::Unsupported("link event without name");
                };
                if !self.elements[idx.0 as usize].incoming.is_empty() {
                    self.problem(
                        ProblemKind::InvalidStructure,
                        node,
                        id,
                        "a link catch event has no incoming sequence flow: it is reached from link throw events of the same name",
                    );
                }
                CatchTrigger::Link((*name).to_owned())
            }
            [EventDef::Conditional { condition }] => match self.conditional(node, id, *condition) {
                Some(c) => CatchTrigger::Conditional(c),
                None => return Kind::Unsupported("conditional event without condition"),
            },
            [EventDef::Message { message_ref }] => match self.message(node, id, *message_ref, true)
            {
                Some(m) => CatchTrigger::Message(m),
                None => return Kind::Unsupported("message catch without message"),
            },
            [EventDef::Signal { signal_ref }] => match self.signal(node, id, *signal_ref) {
                Some(s) => CatchTrigger::Signal(s),
                None => return Kind::Unsupported("signal catch without signal"),
            },
            [
                EventDef::Timer {
                    kind,
                    text,
                    node: tn,
                    ambiguous,
                },
            ] => match self.timer(*tn, id, *kind, *text, *ambiguous) {
                Some(t) if t.kind == crate::model::TimerKind::Cycle => {
                    self.problem(
                            ProblemKind::InvalidTimer,
                            *tn,
                            id,
                            "an intermediate timer catch event fires once; use timeDuration or timeDate, not timeCycle",
                        );
                    return Kind::Unsupported("timer catch with cycle");
                }
                Some(t) => CatchTrigger::Timer(t),
                None => return Kind::Unsupported("invalid timer"),
            },
            [] => {
                self.problem(
                    ProblemKind::InvalidStructure,
                    node,
                    id,
                    "intermediate catch event has no event definition; make it a message or timer event",
                );
                return Kind::Unsupported("catch event without trigger");
            }
            [EventDef::Other(what)] => return self.unsupported(node, id, what),
            [_] => return self.unsupported(node, id, "this kind of intermediate catch event"),
            _ => return self.unsupported(node, id, "catch event with several triggers"),
        };
        Kind::IntermediateCatch(trigger)
    }

    fn throw_event(&mut self, idx: ElementIdx, node: Node<'a, 'a>, id: &str) -> Kind {
        let defs = events::definitions(node);
        let result = match defs.as_slice() {
            [] => ThrowResult::None,
            [EventDef::Escalation { escalation_ref }] => {
                match self.escalation_throw(node, id, *escalation_ref) {
                    Some(e) => ThrowResult::Escalation(e),
                    None => return Kind::Unsupported("escalation throw without escalation code"),
                }
            }
            [EventDef::Link { name }] => match self.link_target(idx, node, id, *name) {
                Some(target) => ThrowResult::Link(target),
                None => return Kind::Unsupported("link throw without its catch event"),
            },
            [EventDef::Message { message_ref }] => match self.message_throw(node, id, *message_ref)
            {
                Some(m) => ThrowResult::Message(m),
                None => return Kind::Unsupported("message throw without job or message"),
            },
            [EventDef::Compensate { activity_ref }] => {
                ThrowResult::Compensation(self.compensation_target(node, id, *activity_ref))
            }
            [EventDef::Signal { signal_ref }] => match self.signal(node, id, *signal_ref) {
                Some(s) => ThrowResult::Signal(s),
                None => return Kind::Unsupported("signal throw without signal"),
            },
            [EventDef::Other(what)] => return self.unsupported(node, id, what),
            [_] => return self.unsupported(node, id, "this kind of intermediate throw event"),
            _ => return self.unsupported(node, id, "throw event with several results"),
        };
        Kind::IntermediateThrow(result)
    }

    fn boundary_event(&mut self, idx: ElementIdx, node: Node<'a, 'a>, id: &str) -> Kind {
        let Some(attached) = ref_attr(node, "attachedToRef") else {
            self.problem(
                ProblemKind::InvalidReference,
                node,
                id,
                "boundary event has no attachedToRef",
            );
            return Kind::Unsupported("boundary without activity");
        };
        let Some(attached_to) = self.index.get(attached).copied() else {
            self.problem(
                ProblemKind::InvalidReference,
                node,
                id,
                format!("boundary event is attached to '{attached}', which is no element of this process"),
            );
            return Kind::Unsupported("boundary without activity");
        };
        let host_tag = self.elements[attached_to.0 as usize].tag;
        let is_activity = matches!(
            host_tag,
            "task"
                | "serviceTask"
                | "sendTask"
                | "receiveTask"
                | "userTask"
                | "manualTask"
                | "scriptTask"
                | "businessRuleTask"
                | "subProcess"
                | "transaction"
                | "adHocSubProcess"
                | "callActivity"
        );
        if !is_activity {
            self.problem(
                ProblemKind::InvalidStructure,
                node,
                id,
                format!(
                    "boundary event is attached to a {}; only activities have boundary events",
                    describe(host_tag)
                ),
            );
            return Kind::Unsupported("boundary on a non-activity");
        }
        self.elements[attached_to.0 as usize].boundaries.push(idx);
        let interrupting = events::interrupting(node);
        let defs = events::definitions(node);
        let caught = match defs.as_slice() {
            [def] => self.caught(node, id, def),
            _ => None,
        };
        let trigger = match (caught, defs.as_slice()) {
            (Some(Err(why)), _) => return Kind::Unsupported(why),
            (Some(Ok(Caught::Timer(t))), [EventDef::Timer { node: tn, .. }])
                if t.kind == crate::model::TimerKind::Cycle && interrupting =>
            {
                self.problem(
                    ProblemKind::InvalidTimer,
                    *tn,
                    id,
                    "an interrupting timer boundary fires once; use timeDuration or timeDate, or make it non-interrupting",
                );
                return Kind::Unsupported("interrupting timer boundary with cycle");
            }
            (Some(Ok(Caught::Timer(t))), _) => BoundaryTrigger::Timer(t),
            (Some(Ok(Caught::Message(m))), _) => BoundaryTrigger::Message(m),
            (Some(Ok(Caught::Signal(sig))), _) => BoundaryTrigger::Signal(sig),
            (Some(Ok(Caught::Error(code))), _) => BoundaryTrigger::Error(code),
            (Some(Ok(Caught::Escalation(code))), _) => BoundaryTrigger::Escalation(code),
            (Some(Ok(Caught::Conditional(c))), _) => BoundaryTrigger::Conditional(c),
            (None, [EventDef::Compensate { .. }]) => {
                let handler = self
                    .associations
                    .get(id)
                    .and_then(|t| self.index.get(*t).copied());
                if handler.is_none() {
                    self.problem(
                        ProblemKind::InvalidStructure,
                        node,
                        id,
                        "compensation boundary event has no handler; connect it by an association to an activity marked for compensation",
                    );
                }
                BoundaryTrigger::Compensation(handler)
            }
            (_, []) => {
                self.problem(
                    ProblemKind::InvalidStructure,
                    node,
                    id,
                    "boundary event has no event definition",
                );
                return Kind::Unsupported("boundary without trigger");
            }
            (_, [EventDef::Other(what)]) => return self.unsupported(node, id, what),
            (_, [_]) => return self.unsupported(node, id, "this kind of boundary event"),
            _ => return self.unsupported(node, id, "boundary event with several triggers"),
        };
        Kind::Boundary(Boundary {
            attached_to,
            interrupting,
            trigger,
        })
    }

    fn script_task(&mut self, node: Node<'a, 'a>, id: &str) -> Kind {
        if let Some(script) = zeebe::extension(node, "script") {
            let Some(expr) = attr(script, "expression") else {
                self.problem(
                    ProblemKind::InvalidExpression,
                    script,
                    id,
                    "zeebe:script has no expression",
                );
                return Kind::Unsupported("script without expression");
            };
            if !expr.starts_with('=') {
                self.problem(
                    ProblemKind::InvalidExpression,
                    script,
                    id,
                    format!(
                        "script expression '{expr}' is not a FEEL expression; write it as '= ...'"
                    ),
                );
                return Kind::Unsupported("script without expression");
            }
            let Some(result_variable) = attr(script, "resultVariable") else {
                self.problem(
                    ProblemKind::InvalidStructure,
                    script,
                    id,
                    "zeebe:script has no resultVariable; name the variable that receives the result",
                );
                return Kind::Unsupported("script without result variable");
            };
            return match zeebe::expression(expr) {
                Ok(expression) => Kind::Task(TaskKind::Script(Script::Expression {
                    expression,
                    result_variable: result_variable.to_owned(),
                })),
                Err(msg) => {
                    self.problem(ProblemKind::InvalidExpression, script, id, msg);
                    Kind::Unsupported("script with invalid expression")
                }
            };
        }
        if zeebe::task_definition(node).is_some() {
            return match self.job(node, id, true) {
                Some(job) => Kind::Task(TaskKind::Script(Script::Job(job))),
                None => Kind::Unsupported("task without job type"),
            };
        }
        self.problem(
            ProblemKind::MissingJobType,
            node,
            id,
            "script task needs <zeebe:script expression=\"= ...\" resultVariable=\"...\"/> or a zeebe:taskDefinition",
        );
        Kind::Unsupported("script task without script")
    }

    /// `zeebe:taskDefinition` of a job-based element; a problem when `required` and missing.
    fn job(&mut self, node: Node<'a, 'a>, id: &str, required: bool) -> Option<JobDef> {
        let tag = self
            .elements
            .iter()
            .find(|e| e.id == id)
            .map_or("element", |e| describe(e.tag));
        let def = zeebe::task_definition(node);
        let Some(job_type) = def.as_ref().and_then(|d| d.job_type.clone()) else {
            if required {
                self.problem(
                    ProblemKind::MissingJobType,
                    node,
                    id,
                    format!("{tag} has no job type; add <zeebe:taskDefinition type=\"...\"/> naming the job worker"),
                );
            }
            return None;
        };
        let job_type = match zeebe::expression(&job_type) {
            Ok(e) => e,
            Err(msg) => {
                self.problem(
                    ProblemKind::InvalidExpression,
                    node,
                    id,
                    format!("job type: {msg}"),
                );
                return None;
            }
        };
        let retries = match def.and_then(|d| d.retries) {
            None => Expression::constant(Value::from(3)),
            Some(r) => match zeebe::number_expression(&r) {
                Ok(e) => e,
                Err(msg) => {
                    self.problem(
                        ProblemKind::InvalidExpression,
                        node,
                        id,
                        format!("retries: {msg}"),
                    );
                    return None;
                }
            },
        };
        Some(JobDef {
            job_type,
            retries,
            headers: zeebe::headers(node),
        })
    }

    /// Resolves a `signalRef` into the signal's name (static or an expression).
    fn signal(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        signal_ref: Option<&str>,
    ) -> Option<SignalRef> {
        let Some(r) = signal_ref else {
            self.problem(
                ProblemKind::InvalidStructure,
                node,
                id,
                "signal event has no signal; pick a signal (signalRef) with a name",
            );
            return None;
        };
        let Some(signal) = self.refs.signals.get(r).copied() else {
            self.problem(
                ProblemKind::InvalidReference,
                node,
                id,
                format!("signal '{r}' is not defined"),
            );
            return None;
        };
        let Some(name) = attr(signal, "name").filter(|n| !n.trim().is_empty()) else {
            self.problem(
                ProblemKind::InvalidStructure,
                node,
                id,
                format!(
                    "signal '{r}' has no name; give it the name every thrower and catcher uses"
                ),
            );
            return None;
        };
        match zeebe::expression(name) {
            Ok(name) => Some(SignalRef {
                id: r.to_owned(),
                name,
            }),
            Err(msg) => {
                self.problem(
                    ProblemKind::InvalidExpression,
                    signal,
                    id,
                    format!("signal name: {msg}"),
                );
                None
            }
        }
    }

    /// Resolves a `messageRef` into the message's name and correlation key expressions.
    fn message(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        message_ref: Option<&str>,
        key_required: bool,
    ) -> Option<MessageRef> {
        let Some(r) = message_ref else {
            self.problem(
                ProblemKind::MissingMessage,
                node,
                id,
                "message event has no message; pick a message (messageRef) with a name",
            );
            return None;
        };
        let Some(message) = self.refs.messages.get(r).copied() else {
            self.problem(
                ProblemKind::InvalidReference,
                node,
                id,
                format!("message '{r}' is not defined"),
            );
            return None;
        };
        let Some(name) = attr(message, "name") else {
            self.problem(
                ProblemKind::MissingMessage,
                node,
                id,
                format!("message '{r}' has no name; give it the name that publishers use"),
            );
            return None;
        };
        let name = match zeebe::expression(name) {
            Ok(e) => e,
            Err(msg) => {
                self.problem(
                    ProblemKind::InvalidExpression,
                    message,
                    id,
                    format!("message name: {msg}"),
                );
                return None;
            }
        };
        let key = zeebe::extension(message, "subscription").and_then(|s| attr(s, "correlationKey"));
        let correlation_key = match key {
            None if key_required => {
                self.problem(
                    ProblemKind::MissingCorrelationKey,
                    node,
                    id,
                    format!(
                        "message '{r}' has no correlation key; add <zeebe:subscription correlationKey=\"= ...\"/> to it"
                    ),
                );
                return None;
            }
            None => None,
            Some(k) => match zeebe::expression(k) {
                Ok(e) => Some(e),
                Err(msg) => {
                    self.problem(
                        ProblemKind::InvalidExpression,
                        message,
                        id,
                        format!("correlation key: {msg}"),
                    );
                    return None;
                }
            },
        };
        Some(MessageRef {
            id: r.to_owned(),
            name,
            correlation_key,
        })
    }

    /// A message throw: a job when the element has a job type (Zeebe's way), else the engine
    /// publishes the referenced message itself.
    fn message_throw(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        message_ref: Option<&str>,
    ) -> Option<MessageThrow> {
        if zeebe::task_definition(node).is_some() {
            return self.job(node, id, true).map(MessageThrow::Job);
        }
        if message_ref.is_none() {
            self.problem(
                ProblemKind::MissingJobType,
                node,
                id,
                "message throw event needs a job type (<zeebe:taskDefinition type=\"...\"/>) or a message with a name that the engine publishes",
            );
            return None;
        }
        let m = self.message(node, id, message_ref, false)?;
        Some(MessageThrow::Publish(MessagePublish {
            name: m.name,
            correlation_key: m.correlation_key,
            time_to_live: None,
        }))
    }

    fn error_throw(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        error_ref: Option<&str>,
    ) -> Option<ErrorThrow> {
        let (code, error) = self.thrown_code(node, id, error_ref, Thrown::Error)?;
        Some(ErrorThrow {
            code,
            message: attr(error, "name").map(str::to_owned),
        })
    }

    /// The code an error or escalation boundary event catches: `Some(None)` catches every
    /// one (no reference), `None` when the reference names nothing.
    fn caught_code(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        reference: Option<&str>,
        what: Thrown,
    ) -> Option<Option<String>> {
        let Some(r) = reference else {
            return Some(None);
        };
        let (name, attr_name, table) = match what {
            Thrown::Error => ("error", "errorCode", &self.refs.errors),
            Thrown::Escalation => ("escalation", "escalationCode", &self.refs.escalations),
        };
        match table.get(r) {
            Some(e) => {
                let code = attr(*e, attr_name).map(str::to_owned);
                if matches!(what, Thrown::Escalation)
                    && code.as_deref().is_some_and(|c| c.starts_with('='))
                {
                    self.problem(
                        ProblemKind::InvalidExpression,
                        node,
                        id,
                        "an escalation catch event's code is a static value, not an expression",
                    );
                }
                Some(code)
            }
            None => {
                self.problem(
                    ProblemKind::InvalidReference,
                    node,
                    id,
                    format!("{name} catch event refers to {name} '{r}', which is not defined"),
                );
                None
            }
        }
    }

    /// The code an error or escalation throw event throws: its reference resolved to a
    /// top-level `bpmn:error`/`bpmn:escalation`, whose code may be an expression.
    fn thrown_code(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        reference: Option<&str>,
        what: Thrown,
    ) -> Option<(Expression, Node<'a, 'a>)> {
        let (name, attr_name, missing) = match what {
            Thrown::Error => ("error", "errorCode", ProblemKind::MissingError),
            Thrown::Escalation => (
                "escalation",
                "escalationCode",
                ProblemKind::InvalidReference,
            ),
        };
        let Some(r) = reference else {
            let message = match what {
                Thrown::Error => "error end event has no error; pick an error with an error code",
                Thrown::Escalation => {
                    "escalation throw event has no escalation; pick an escalation with an escalation code"
                }
            };
            self.problem(missing, node, id, message);
            return None;
        };
        let table = match what {
            Thrown::Error => &self.refs.errors,
            Thrown::Escalation => &self.refs.escalations,
        };
        let Some(target) = table.get(r).copied() else {
            self.problem(
                ProblemKind::InvalidReference,
                node,
                id,
                format!("{name} '{r}' is not defined"),
            );
            return None;
        };
        let Some(code) = attr(target, attr_name).filter(|c| !c.trim().is_empty()) else {
            self.problem(
                missing,
                node,
                id,
                format!("{name} '{r}' has no {attr_name}"),
            );
            return None;
        };
        match zeebe::expression(code) {
            Ok(code) => Some((code, target)),
            Err(msg) => {
                self.problem(
                    ProblemKind::InvalidExpression,
                    target,
                    id,
                    format!("{name} code: {msg}"),
                );
                None
            }
        }
    }

    /// The FEEL condition of a conditional event.
    fn conditional(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        condition: Option<(&'a str, Node<'a, 'a>)>,
    ) -> Option<Expression> {
        let Some((text, at)) = condition else {
            self.problem(
                ProblemKind::InvalidStructure,
                node,
                id,
                "conditional event has no condition; add <bpmn:condition>= ...</bpmn:condition> to its conditionalEventDefinition",
            );
            return None;
        };
        match zeebe::condition(text) {
            Ok(c) => Some(c),
            Err(msg) => {
                self.problem(ProblemKind::InvalidExpression, at, id, msg);
                None
            }
        }
    }

    fn escalation_throw(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        escalation_ref: Option<&str>,
    ) -> Option<EscalationThrow> {
        let (code, _) = self.thrown_code(node, id, escalation_ref, Thrown::Escalation)?;
        Some(EscalationThrow { code })
    }

    /// The link catch event a link throw event named `name` goes to: the one catch event of
    /// that name in the same scope.
    fn link_target(
        &mut self,
        idx: ElementIdx,
        node: Node<'a, 'a>,
        id: &str,
        name: Option<&str>,
    ) -> Option<ElementIdx> {
        let Some(name) = name else {
            self.problem(
                ProblemKind::InvalidStructure,
                node,
                id,
                "link throw event has no link name; give its linkEventDefinition the name of a link catch event",
            );
            return None;
        };
        let scope = self.elements[idx.0 as usize].scope;
        let catches: Vec<ElementIdx> = (0..self.elements.len())
            .filter(|&j| {
                self.elements[j].scope == scope
                    && self.elements[j].tag == "intermediateCatchEvent"
                    && matches!(
                        events::definitions(self.nodes[j]).as_slice(),
                        [EventDef::Link { name: Some(n) }] if *n == name
                    )
            })
            .map(|j| ElementIdx(j as u32))
            .collect();
        match catches.as_slice() {
            [one] => Some(*one),
            [] => {
                self.problem(
                    ProblemKind::InvalidReference,
                    node,
                    id,
                    format!("no link catch event named '{name}' in the same scope; add one, or fix the name"),
                );
                None
            }
            _ => {
                self.problem(
                    ProblemKind::InvalidStructure,
                    node,
                    id,
                    format!("several link catch events are named '{name}' in this scope; a link name must be unique there"),
                );
                None
            }
        }
    }

    fn compensation_target(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        activity_ref: Option<&str>,
    ) -> Option<ElementIdx> {
        let r = activity_ref?;
        match self.index.get(r).copied() {
            Some(idx) => Some(idx),
            None => {
                self.problem(
                    ProblemKind::InvalidReference,
                    node,
                    id,
                    format!("compensation activityRef '{r}' names no element of this process"),
                );
                None
            }
        }
    }

    fn timer(
        &mut self,
        node: Node<'a, 'a>,
        id: &str,
        kind: Option<crate::model::TimerKind>,
        text: Option<&str>,
        ambiguous: bool,
    ) -> Option<TimerDef> {
        let Some(kind) = kind else {
            self.problem(
                ProblemKind::InvalidTimer,
                node,
                id,
                "timer has no timeDuration, timeDate or timeCycle",
            );
            return None;
        };
        if ambiguous {
            self.problem(
                ProblemKind::InvalidTimer,
                node,
                id,
                "timer has more than one of timeDuration, timeDate and timeCycle",
            );
            return None;
        }
        let Some(text) = text else {
            self.problem(
                ProblemKind::InvalidTimer,
                node,
                id,
                format!("timer {} is empty", kind.name()),
            );
            return None;
        };
        let expr = match zeebe::expression(text) {
            Ok(e) => e,
            Err(msg) => {
                self.problem(
                    ProblemKind::InvalidExpression,
                    node,
                    id,
                    format!("timer: {msg}"),
                );
                return None;
            }
        };
        let def = TimerDef { kind, expr };
        if let Some(msg) = def.static_error() {
            self.problem(
                ProblemKind::InvalidTimer,
                node,
                id,
                format!("timer {}: {msg}", kind.name()),
            );
            return None;
        }
        Some(def)
    }

    /// `zeebe:ioMapping` inputs and outputs.
    fn mappings(&mut self, idx: ElementIdx, node: Node<'a, 'a>) {
        let io = zeebe::io_mapping(node);
        let id = self.elements[idx.0 as usize].id.clone();
        let convert = |this: &mut Self, list: Vec<(Option<&str>, Option<&str>, Node<'a, 'a>)>| {
            let mut out = Vec::new();
            for (source, target, m) in list {
                let Some(target) = target else {
                    this.problem(
                        ProblemKind::InvalidStructure,
                        m,
                        &id,
                        "variable mapping has no target",
                    );
                    continue;
                };
                let target = match zeebe::target_path(target) {
                    Ok(t) => t,
                    Err(msg) => {
                        this.problem(
                            ProblemKind::InvalidStructure,
                            m,
                            &id,
                            format!("mapping target: {msg}"),
                        );
                        continue;
                    }
                };
                let source = match source {
                    None => Expression::constant(Value::Null),
                    Some(s) => match zeebe::expression(s) {
                        Ok(e) => e,
                        Err(msg) => {
                            this.problem(
                                ProblemKind::InvalidExpression,
                                m,
                                &id,
                                format!("mapping source: {msg}"),
                            );
                            continue;
                        }
                    },
                };
                out.push(Mapping { source, target });
            }
            out
        };
        let inputs = convert(self, io.inputs);
        let outputs = convert(self, io.outputs);
        let e = &mut self.elements[idx.0 as usize];
        e.inputs = inputs;
        e.outputs = outputs;
    }
}
