//! The records of engine state: what each table holds. Changed only by event appliers.

use serde::{Deserialize, Serialize};

use crate::feel::Context;
use crate::model::ElementIdx;

/// A deployed version of a process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// The process definition key.
    pub key: u64,
    pub process_id: String,
    pub version: u32,
    /// The name of the resource (file) it was deployed from.
    pub resource: String,
    pub xml: String,
    /// Hex SHA-256 of the XML: the same file deployed again makes no new version.
    pub checksum: String,
    pub deployed_at: i64,
}

/// Where an element instance is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElementState {
    Activating,
    Activated,
    Completing,
    Terminating,
}

/// A running element: a token in a task, event, gateway, subprocess, or the process itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElementInstance {
    pub key: u64,
    /// The process instance (the key of its root element instance).
    pub instance: u64,
    /// The process definition key.
    pub definition: u64,
    pub element: ElementIdx,
    /// The element instance of the container it runs in; `None` for the process itself.
    pub scope: Option<u64>,
    pub state: ElementState,
    /// Children not yet ended (containers).
    pub active_children: u32,
    /// Tokens on sequence flows inside this container, not yet arrived at their target.
    pub active_flows: u32,
    pub job: Option<u64>,
    /// For the process: the correlation key of the message that started it.
    pub start_key: Option<String>,
    /// For a compensation handler: the throw event that waits for it.
    pub compensating: Option<u64>,
    /// For a compensation throw event: handlers it still waits for.
    pub waiting: u32,
    /// The open incident on this element (or its job).
    pub incident: Option<u64>,
    /// What is stored under this instance's key besides itself, so that ending it only
    /// cleans up tables that have something: local variables, join counters and compensation
    /// subscriptions (the last two for containers).
    pub has_variables: bool,
    pub has_joins: bool,
    pub has_compensations: bool,
    pub started_at: i64,
}

impl ElementInstance {
    /// A new element instance of `element`, ACTIVATING in `scope` (`None`: a process instance,
    /// whose key is its own `instance`), with nothing inside it yet.
    pub(crate) fn activating(
        key: u64,
        instance: u64,
        definition: u64,
        element: ElementIdx,
        scope: Option<u64>,
        now: i64,
    ) -> ElementInstance {
        ElementInstance {
            key,
            instance,
            definition,
            element,
            scope,
            state: ElementState::Activating,
            active_children: 0,
            active_flows: 0,
            job: None,
            start_key: None,
            compensating: None,
            waiting: 0,
            incident: None,
            has_variables: false,
            has_joins: false,
            has_compensations: false,
            started_at: now,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for a worker.
    Activatable,
    /// Failed with retries left; activatable again at `retry_at`.
    Backoff { retry_at: i64 },
    /// Failed with no retries left, or its error was not caught: an incident holds it.
    Incident,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub key: u64,
    pub job_type: String,
    pub retries: u32,
    pub element_instance: u64,
    pub instance: u64,
    pub definition: u64,
    pub element: ElementIdx,
    pub state: JobState,
    pub error_message: Option<String>,
    pub created_at: i64,
}

/// Why an incident was raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncidentKind {
    /// A job failed with no retries left.
    JobNoRetries,
    /// An expression could not be evaluated (message name, correlation key, timer, job type...).
    Expression,
    /// No outgoing flow of an exclusive gateway could be taken.
    Condition,
    /// An input or output mapping failed.
    IoMapping,
    /// An error was thrown and no error event catches it.
    UnhandledError,
    /// A job's type has no worker (the sidecar reports this through a failed job).
    Other,
    /// A call activity's process could not be found or started.
    CalledElement,
}

impl IncidentKind {
    pub fn name(self) -> &'static str {
        match self {
            IncidentKind::JobNoRetries => "JOB_NO_RETRIES",
            IncidentKind::Expression => "EXTRACT_VALUE_ERROR",
            IncidentKind::Condition => "CONDITION_ERROR",
            IncidentKind::IoMapping => "IO_MAPPING_ERROR",
            IncidentKind::UnhandledError => "UNHANDLED_ERROR_EVENT",
            IncidentKind::Other => "UNKNOWN",
            IncidentKind::CalledElement => "CALLED_ELEMENT_ERROR",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub key: u64,
    pub kind: IncidentKind,
    pub message: String,
    pub element_instance: u64,
    pub instance: u64,
    pub definition: u64,
    pub element: ElementIdx,
    pub job: Option<u64>,
    pub created_at: i64,
}

/// A published message, buffered until its deadline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub key: u64,
    pub name: String,
    pub correlation_key: String,
    pub variables: Context,
    pub deadline: i64,
    pub message_id: Option<String>,
    pub published_at: i64,
}

/// An element waiting for a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// The element instance that opened it: the catch event or receive task itself, the activity
    /// a boundary event is attached to, or an event-based gateway.
    pub owner: u64,
    /// The catching element (the event, boundary event or receive task).
    pub element: ElementIdx,
    pub instance: u64,
    pub definition: u64,
    pub name: String,
    pub correlation_key: String,
    pub interrupting: bool,
}

/// A repeating timer's remaining firings (`None`: forever) and interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repeat {
    pub remaining: Option<u32>,
    pub months: i64,
    pub nanos: i128,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    pub key: u64,
    pub due: i64,
    /// The element instance it belongs to (as `owner` of [`Subscription`]); `None` for a timer
    /// start event.
    pub owner: Option<u64>,
    pub instance: Option<u64>,
    pub definition: u64,
    /// The timer event element.
    pub element: ElementIdx,
    pub repeat: Option<Repeat>,
}

impl Timer {
    /// What the timer is indexed under: its element instance, or its definition for start timers.
    pub fn owner_key(&self) -> u64 {
        self.owner.unwrap_or(self.definition)
    }
}

/// An element waiting for a signal: a catch event, a boundary event or event-subprocess start
/// (owned by the element instance they wait for), or a start event of the latest version of a
/// process (owned by its definition).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalSubscription {
    /// The element instance that opened it, or the definition key for a start event.
    pub owner: u64,
    pub element: ElementIdx,
    /// `None` for a start event.
    pub instance: Option<u64>,
    pub definition: u64,
    pub name: String,
}

/// A signal a throw or end event broadcasts: kept until the runtime acknowledges that it sent
/// it to every sidecar whose processes wait for it (itself included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalBroadcast {
    pub key: u64,
    pub name: String,
    pub variables: Context,
    /// `flowmesh-signal-<key>`: receivers deduplicate by it.
    pub id: String,
    pub instance: u64,
    pub element_instance: u64,
}

/// A process instance started by a call activity, and that call activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLink {
    /// The child process instance.
    pub child: u64,
    /// The call activity's element instance.
    pub parent: u64,
    /// The process instance the call activity belongs to.
    pub parent_instance: u64,
}

/// The counters of a multi-instance body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopCounts {
    /// Items of the input collection: inner instances it runs in all.
    pub instances: u32,
    pub completed: u32,
    /// Inner instances terminated before they completed (a completion condition held).
    pub terminated: u32,
}

/// A completed activity whose compensation handler can still be invoked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompensationSub {
    pub key: u64,
    /// The container element instance it is compensated in.
    pub scope: u64,
    pub instance: u64,
    pub definition: u64,
    pub activity: ElementIdx,
    pub boundary: ElementIdx,
    pub handler: ElementIdx,
}

/// A message the engine publishes (a message throw event without a job): kept until the runtime
/// acknowledges that it routed it, so a crash cannot lose it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    pub key: u64,
    pub name: String,
    pub correlation_key: String,
    pub variables: Context,
    pub ttl_ms: i64,
    /// `flowmesh-<key>`: receivers deduplicate by it.
    pub message_id: String,
    pub instance: u64,
    pub element_instance: u64,
}
