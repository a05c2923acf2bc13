//! The executable model: what a BPMN file means, as an arena graph the engine walks.
//!
//! Elements and sequence flows live in per-process arenas and point at each other by index
//! ([`ElementIdx`], [`FlowIdx`]). Every element keeps its id, name and source position, so
//! problems and incidents can point at the line the modeller drew. Expressions are compiled FEEL.
//! A process that cannot run keeps its graph (the monitor still draws it) and lists its
//! [`Problem`]s.

// Model values are built once per deployment and only read after; boxing the larger variants
// would add indirection to every read for no saving that matters.
#![allow(clippy::large_enum_variant)]

pub mod binding;
pub mod cron;
mod diagram;
pub mod event_binding;
mod notation;
mod problem;
pub mod timer;
mod validate;

use std::collections::HashMap;
use std::sync::Arc;

use crate::feel::Expression;

pub use binding::{FLOWMESH_NS, HttpBinding, KeySource, PathTemplate, RequestView};
pub use diagram::{Bounds, Diagram, Edge, Point, Shape};
pub use event_binding::EventBinding;
pub use notation::{Looping, Marker, Notation};
pub use problem::{Problem, ProblemKind};
pub use timer::{TimerDef, TimerKind};
pub(crate) use validate::validate;

/// A position in the source file, 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// Index of an element in its process's arena.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ElementIdx(pub u32);

/// Index of a sequence flow in its process's arena.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct FlowIdx(pub u32);

/// Everything one BPMN file defines.
#[derive(Debug)]
pub struct Definitions {
    pub id: Option<String>,
    pub exporter: Option<String>,
    pub processes: Vec<Arc<Process>>,
    pub collaboration: Option<Collaboration>,
    pub diagram: Diagram,
    /// `flowmesh:http` bindings on the file's messages.
    pub bindings: Vec<HttpBinding>,
    /// `flowmesh:event` bindings on the file's messages.
    pub event_bindings: Vec<EventBinding>,
    /// Bindings that cannot be used; they keep the file from deploying.
    pub binding_problems: Vec<Problem>,
}

impl Definitions {
    /// The processes that are marked executable and have no problems.
    pub fn executable_processes(&self) -> impl Iterator<Item = &Arc<Process>> {
        self.processes.iter().filter(|p| p.is_executable())
    }

    /// Why this file cannot run, or nothing when every executable process is valid and there is
    /// at least one. Problems come in source order.
    pub fn problems(&self) -> Vec<Problem> {
        let marked: Vec<&Arc<Process>> = self.processes.iter().filter(|p| p.executable).collect();
        let mut out = Vec::new();
        if marked.is_empty() {
            if self.processes.is_empty() {
                out.push(Problem::new(
                    ProblemKind::NoProcess,
                    Pos { line: 1, col: 1 },
                    self.id.as_deref().unwrap_or("definitions"),
                    "the file defines no process; draw one (a pool with a start event) to run it",
                ));
            }
            for p in &self.processes {
                out.push(Problem::new(
                    ProblemKind::NotExecutable,
                    p.pos,
                    &p.id,
                    "process is not marked executable; set isExecutable=\"true\" to run it",
                ));
                out.extend(p.problems.iter().cloned());
            }
        } else {
            for p in marked {
                out.extend(p.problems.iter().cloned());
            }
        }
        out.extend(self.binding_problems.iter().cloned());
        out.sort_by_key(|p| (p.pos.line, p.pos.col));
        out
    }
}

/// Pools and the messages between them.
#[derive(Debug, Default)]
pub struct Collaboration {
    pub id: String,
    pub participants: Vec<Participant>,
    pub message_flows: Vec<MessageFlow>,
}

#[derive(Debug)]
pub struct Participant {
    pub id: String,
    pub name: Option<String>,
    pub process_id: Option<String>,
    pub pos: Pos,
}

#[derive(Debug)]
pub struct MessageFlow {
    pub id: String,
    pub name: Option<String>,
    pub source: String,
    pub target: String,
    pub message: Option<String>,
    pub pos: Pos,
}

/// A lane of a pool; lanes only group elements for display.
#[derive(Debug)]
pub struct Lane {
    pub id: String,
    pub name: Option<String>,
    pub elements: Vec<ElementIdx>,
}

/// One process: its elements, its flows, and what keeps it from running.
#[derive(Debug)]
pub struct Process {
    pub id: String,
    pub name: Option<String>,
    /// `isExecutable="true"`.
    pub executable: bool,
    pub pos: Pos,
    /// The arena. Index 0 is the process itself (the root scope).
    pub elements: Vec<Element>,
    pub flows: Vec<SequenceFlow>,
    pub lanes: Vec<Lane>,
    /// `zeebe:versionTag`: what call activities with the versionTag binding look for.
    pub version_tag: Option<String>,
    pub problems: Vec<Problem>,
    pub(crate) index: HashMap<String, ElementIdx>,
    pub(crate) flow_index: HashMap<String, FlowIdx>,
}

impl Process {
    pub const ROOT: ElementIdx = ElementIdx(0);

    /// Marked executable and free of problems.
    pub fn is_executable(&self) -> bool {
        self.executable && self.problems.is_empty()
    }

    pub fn element(&self, idx: ElementIdx) -> &Element {
        &self.elements[idx.0 as usize]
    }

    pub fn flow(&self, idx: FlowIdx) -> &SequenceFlow {
        &self.flows[idx.0 as usize]
    }

    pub fn element_by_id(&self, id: &str) -> Option<ElementIdx> {
        self.index.get(id).copied()
    }

    pub fn flow_by_id(&self, id: &str) -> Option<FlowIdx> {
        self.flow_index.get(id).copied()
    }

    /// What the diagram shows for `idx`: a multi-instance body is drawn as its inner activity
    /// (the task or subprocess, with the loop marker).
    pub fn drawn(&self, idx: ElementIdx) -> &Element {
        self.element(self.inner_of(idx).unwrap_or(idx))
    }

    /// The inner activity of a multi-instance body (even one that cannot run): its only child,
    /// with the same id.
    pub fn inner_of(&self, idx: ElementIdx) -> Option<ElementIdx> {
        let el = self.element(idx);
        match el.children.as_slice() {
            [inner] if idx != Self::ROOT && self.element(*inner).id == el.id => Some(*inner),
            _ => None,
        }
    }

    pub fn root(&self) -> &Element {
        self.element(Self::ROOT)
    }

    /// The none start event of a container (the process or an embedded subprocess).
    pub fn none_start(&self, container: ElementIdx) -> Option<ElementIdx> {
        self.element(container)
            .children
            .iter()
            .copied()
            .find(|&c| matches!(self.element(c).kind, Kind::StartEvent(StartTrigger::None)))
    }

    /// The event subprocesses directly inside a container.
    pub fn event_subprocesses(
        &self,
        container: ElementIdx,
    ) -> impl Iterator<Item = (ElementIdx, &EventSubProcess)> + '_ {
        self.element(container)
            .children
            .iter()
            .filter_map(|&c| match &self.element(c).kind {
                Kind::EventSubProcess(sub) => Some((c, sub)),
                _ => None,
            })
    }

    /// Whether a boundary event or an event-subprocess start event interrupts what it is
    /// attached to (its activity, or the rest of its container).
    pub fn interrupts(&self, event: ElementIdx) -> bool {
        match &self.element(event).kind {
            Kind::Boundary(b) => b.interrupting,
            Kind::StartEvent(_) => self
                .element(event)
                .scope
                .and_then(|s| match &self.element(s).kind {
                    Kind::EventSubProcess(sub) => Some(sub.interrupting),
                    _ => None,
                })
                .unwrap_or(false),
            _ => false,
        }
    }

    /// The message names this process waits for (catch events, receive tasks, boundary and
    /// start events), where they are static; sorted, without repeats.
    pub fn waited_messages(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .elements
            .iter()
            .filter_map(|e| match &e.kind {
                Kind::StartEvent(StartTrigger::Message(m))
                | Kind::IntermediateCatch(CatchTrigger::Message(m))
                | Kind::Task(TaskKind::Receive { message: m, .. })
                | Kind::Boundary(Boundary {
                    trigger: BoundaryTrigger::Message(m),
                    ..
                }) => Some(m),
                _ => None,
            })
            .filter(|m| m.name.is_constant())
            .map(|m| m.name.source().to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Top-level start events that a message, a timer or a signal triggers.
    pub fn triggered_starts(&self) -> impl Iterator<Item = ElementIdx> + '_ {
        self.root().children.iter().copied().filter(|&c| {
            matches!(
                self.element(c).kind,
                Kind::StartEvent(
                    StartTrigger::Message(_) | StartTrigger::Timer(_) | StartTrigger::Signal(_)
                ) | Kind::Task(TaskKind::Receive {
                    instantiate: true,
                    ..
                })
            )
        })
    }
}

/// A flow node (or the process itself, at index 0).
#[derive(Debug)]
pub struct Element {
    pub idx: ElementIdx,
    pub id: String,
    pub name: Option<String>,
    pub pos: Pos,
    pub kind: Kind,
    /// The container this element runs in; `None` only for the process.
    pub scope: Option<ElementIdx>,
    pub incoming: Vec<FlowIdx>,
    pub outgoing: Vec<FlowIdx>,
    pub default_flow: Option<FlowIdx>,
    /// Boundary events attached to this activity.
    pub boundaries: Vec<ElementIdx>,
    /// Elements directly inside this container.
    pub children: Vec<ElementIdx>,
    pub inputs: Vec<Mapping>,
    pub outputs: Vec<Mapping>,
    /// `isForCompensation="true"`: a compensation handler, started only by compensation.
    pub for_compensation: bool,
    /// The BPMN element name in the file (`serviceTask`), for messages.
    pub tag: &'static str,
    /// How the monitor draws it.
    pub notation: Notation,
}

impl Element {
    /// Activities can have boundary events, input/output mappings and compensation.
    pub fn is_activity(&self) -> bool {
        matches!(
            self.kind,
            Kind::Task(_) | Kind::SubProcess | Kind::MultiInstance(_) | Kind::CallActivity(_)
        )
    }

    pub fn is_container(&self) -> bool {
        matches!(
            self.kind,
            Kind::Process | Kind::SubProcess | Kind::EventSubProcess(_)
        )
    }
}

#[derive(Debug)]
pub struct SequenceFlow {
    pub idx: FlowIdx,
    pub id: String,
    pub name: Option<String>,
    pub pos: Pos,
    pub source: ElementIdx,
    pub target: ElementIdx,
    pub condition: Option<Expression>,
}

/// What an element is and does.
#[derive(Debug)]
pub enum Kind {
    Process,
    SubProcess,
    /// A subprocess with `triggeredByEvent="true"`: started by its start event's trigger while
    /// its container runs, never by a sequence flow.
    EventSubProcess(EventSubProcess),
    StartEvent(StartTrigger),
    EndEvent(EndResult),
    IntermediateCatch(CatchTrigger),
    IntermediateThrow(ThrowResult),
    Boundary(Boundary),
    Task(TaskKind),
    /// The body of a multi-instance activity: it runs its inner activity (an element of its
    /// own, with the same id, inside the body) once per item of a collection. Flows, boundary
    /// events and the id lookup lead to the body; the inner element has the task's kind and
    /// mappings.
    MultiInstance(Box<MultiInstance>),
    /// Runs another process as a child instance and completes when it does.
    CallActivity(CallActivity),
    ExclusiveGateway,
    ParallelGateway,
    /// Takes every flow whose condition holds (else the default); as a join, waits for every
    /// token that can still arrive.
    InclusiveGateway,
    EventBasedGateway,
    /// An element flowmesh reads but does not run (yet); the process lists a problem for it.
    Unsupported(&'static str),
}

#[derive(Debug)]
pub enum StartTrigger {
    None,
    Message(MessageRef),
    Timer(TimerDef),
    /// Event subprocesses only: catches errors with this code (`None`: every error).
    Error(Option<String>),
    /// Event subprocesses only: catches escalations with this code (`None`: every one).
    Escalation(Option<String>),
    /// Event subprocesses only: fires when the condition holds after variables changed.
    Conditional(Expression),
    /// A broadcast signal of this name starts an instance (or, in an event subprocess, it).
    Signal(SignalRef),
}

/// A signal an event waits for or broadcasts: by name, mesh-wide.
#[derive(Debug)]
pub struct SignalRef {
    pub id: String,
    /// Static or an expression (evaluated when the event activates).
    pub name: Expression,
}

/// How an event subprocess starts.
#[derive(Debug)]
pub struct EventSubProcess {
    /// Its only start event, whose trigger starts it.
    pub start: ElementIdx,
    /// An interrupting start ends everything else in the container first.
    pub interrupting: bool,
}

#[derive(Debug)]
pub enum CatchTrigger {
    Message(MessageRef),
    Timer(TimerDef),
    /// A link catch event: the target of throw link events of the same name in its scope.
    Link(String),
    /// Waits until the condition holds (checked on arrival and whenever the instance's
    /// variables change).
    Conditional(Expression),
    Signal(SignalRef),
}

#[derive(Debug)]
pub enum EndResult {
    None,
    Message(MessageThrow),
    Error(ErrorThrow),
    Terminate,
    Compensation(Option<ElementIdx>),
    Escalation(EscalationThrow),
    /// Broadcasts the signal to every subscription in the mesh.
    Signal(SignalRef),
}

#[derive(Debug)]
pub enum ThrowResult {
    None,
    Message(MessageThrow),
    Compensation(Option<ElementIdx>),
    Escalation(EscalationThrow),
    /// Goes on at the link catch event of this name in the same scope.
    Link(ElementIdx),
    /// Broadcasts the signal to every subscription in the mesh.
    Signal(SignalRef),
}

#[derive(Debug)]
pub struct Boundary {
    pub attached_to: ElementIdx,
    pub interrupting: bool,
    pub trigger: BoundaryTrigger,
}

#[derive(Debug)]
pub enum BoundaryTrigger {
    Timer(TimerDef),
    Message(MessageRef),
    /// Catches errors with this code; `None` catches every error.
    Error(Option<String>),
    /// Starts this handler for the completed activity.
    Compensation(Option<ElementIdx>),
    /// Catches escalations with this code; `None` catches every escalation.
    Escalation(Option<String>),
    /// Fires when the condition holds after the instance's variables changed.
    Conditional(Expression),
    Signal(SignalRef),
}

#[derive(Debug)]
pub enum TaskKind {
    /// Service, send and business-rule tasks: a job for a worker.
    Job(JobDef),
    /// A job of the reserved user-task type.
    User(JobDef),
    Script(Script),
    Receive {
        message: MessageRef,
        instantiate: bool,
    },
    /// Manual and undefined tasks: nothing to do, the token passes.
    PassThrough,
}

/// `zeebe:calledElement`: which process a call activity starts, and what variables cross.
#[derive(Debug)]
pub struct CallActivity {
    /// The called process's id (static or an expression).
    pub process_id: Expression,
    pub binding: CallBinding,
    /// The child's variables come back when it completes (`propagateAllChildVariables`,
    /// default true; output mappings, when there are any, pick what comes back instead).
    pub propagate_child: bool,
    /// The child starts with every variable the call activity sees
    /// (`propagateAllParentVariables`, default true), else only its input mappings.
    pub propagate_parent: bool,
}

/// Which version of the called process starts (`bindingType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallBinding {
    Latest,
    /// The version deployed together with the calling process.
    Deployment,
    /// The latest version with this `zeebe:versionTag`.
    VersionTag(String),
}

/// `multiInstanceLoopCharacteristics` with `zeebe:loopCharacteristics`.
#[derive(Debug)]
pub struct MultiInstance {
    /// One instance after the other (`isSequential="true"`), else all at once.
    pub sequential: bool,
    /// Evaluated when the body activates; must give a list.
    pub input_collection: Expression,
    /// The local variable of each inner instance that holds its item.
    pub input_element: Option<String>,
    /// The list the body collects `output_element` into, one entry per item, in item order.
    pub output_collection: Option<String>,
    /// Evaluated in each inner instance when it completes.
    pub output_element: Option<Expression>,
    /// Checked after each inner instance completes; when true the body completes and the
    /// instances still running are terminated.
    pub completion_condition: Option<Expression>,
    /// The inner activity.
    pub inner: ElementIdx,
}

/// A message an element waits for.
#[derive(Debug)]
pub struct MessageRef {
    pub id: String,
    /// Static or an expression evaluated when the element activates.
    pub name: Expression,
    pub correlation_key: Option<Expression>,
}

/// A message an element sends: as a job (Zeebe's way) or published by the engine itself.
#[derive(Debug)]
pub enum MessageThrow {
    Job(JobDef),
    Publish(MessagePublish),
}

#[derive(Debug)]
pub struct MessagePublish {
    pub name: Expression,
    pub correlation_key: Option<Expression>,
    /// Time to live of the published message; `None` uses the engine default.
    pub time_to_live: Option<Expression>,
}

/// An escalation an event throws; its code may be an expression.
#[derive(Debug)]
pub struct EscalationThrow {
    pub code: Expression,
}

#[derive(Debug)]
pub struct ErrorThrow {
    pub code: Expression,
    pub message: Option<String>,
}

/// A job: `zeebe:taskDefinition` and `zeebe:taskHeaders`.
#[derive(Debug)]
pub struct JobDef {
    pub job_type: Expression,
    pub retries: Expression,
    pub headers: Vec<(String, String)>,
}

/// `zeebe:script`: a FEEL expression whose result goes into a variable.
#[derive(Debug)]
pub enum Script {
    Expression {
        expression: Expression,
        result_variable: String,
    },
    Job(JobDef),
}

/// One `zeebe:input` or `zeebe:output`.
#[derive(Debug)]
pub struct Mapping {
    pub source: Expression,
    /// The target path: `a.b.c` is `["a", "b", "c"]`.
    pub target: Vec<String>,
}

/// The reserved job type of user tasks, as in Zeebe.
pub const USER_TASK_JOB_TYPE: &str = "io.camunda.zeebe:userTask";
