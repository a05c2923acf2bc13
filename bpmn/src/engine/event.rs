//! Events: every state change the engine makes, as data. Appliers (`apply`) turn them into
//! state; replaying them on empty state rebuilds the same state.

use serde::{Deserialize, Serialize};

use super::records::{
    CallLink, CompensationSub, ElementInstance, Incident, Job, LoopCounts, MessageRecord,
    ProcessRecord, Publication, SignalBroadcast, SignalSubscription, Subscription, Timer,
};
use crate::feel::{Context, Value};
use crate::model::{ElementIdx, FlowIdx};

/// Which element instance an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementRef {
    pub key: u64,
    pub instance: u64,
    pub definition: u64,
    pub element: ElementIdx,
    pub scope: Option<u64>,
}

impl ElementRef {
    pub fn of(e: &ElementInstance) -> ElementRef {
        ElementRef {
            key: e.key,
            instance: e.instance,
            definition: e.definition,
            element: e.element,
            scope: e.scope,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    Activated,
    Completing,
    Completed,
    Terminating,
    Terminated,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    ProcessDeployed(ProcessRecord),
    ElementActivating {
        element: ElementInstance,
        /// Tokens that arrived by these flows.
        consumed: Vec<FlowIdx>,
        /// A join: the consumed tokens were waiting in the join counters.
        joined: bool,
    },
    Element {
        intent: Lifecycle,
        element: ElementRef,
        at: i64,
    },
    SequenceFlowTaken {
        scope: u64,
        flow: FlowIdx,
        instance: u64,
        definition: u64,
        /// The target joins tokens: the token waits in a counter until all have arrived.
        join: bool,
    },
    VariableCreated {
        scope: u64,
        name: String,
        value: Value,
        instance: u64,
    },
    VariableUpdated {
        scope: u64,
        name: String,
        value: Value,
        instance: u64,
    },
    JobCreated(Job),
    JobCompleted {
        key: u64,
        variables: Context,
    },
    JobFailed {
        key: u64,
        retries: u32,
        retry_at: Option<i64>,
        message: String,
    },
    /// A failed job's backoff ended: it is activatable again.
    JobRecurred {
        key: u64,
    },
    JobErrorThrown {
        key: u64,
        code: String,
        message: String,
    },
    JobCanceled {
        key: u64,
    },
    JobRetriesUpdated {
        key: u64,
        retries: u32,
    },
    IncidentCreated(Incident),
    IncidentResolved {
        key: u64,
    },
    MessagePublished(MessageRecord),
    MessageExpired {
        key: u64,
    },
    MessageCorrelated {
        message: u64,
        instance: u64,
        /// Whether the message stays buffered (then it may not correlate to this instance again).
        buffered: bool,
    },
    SubscriptionOpened(Subscription),
    SubscriptionClosed {
        owner: u64,
        element: ElementIdx,
    },
    StartSubscriptionOpened {
        name: String,
        definition: u64,
        element: ElementIdx,
    },
    StartSubscriptionClosed {
        name: String,
        definition: u64,
        element: ElementIdx,
    },
    TimerCreated(Timer),
    TimerTriggered {
        key: u64,
    },
    TimerCanceled {
        key: u64,
    },
    CompensationSubscribed(CompensationSub),
    CompensationTriggered {
        scope: u64,
        key: u64,
    },
    PublishRequested(Publication),
    PublishAcknowledged {
        key: u64,
    },
    /// An element instance (or the process instance) now belongs to another version of its
    /// process, as this element of it.
    ElementMigrated {
        key: u64,
        instance: u64,
        definition: u64,
        element: ElementIdx,
    },
    SignalSubscriptionOpened(SignalSubscription),
    SignalSubscriptionClosed {
        owner: u64,
        element: ElementIdx,
        name: String,
    },
    /// A signal arrived: every subscription for its name was triggered.
    SignalReceived {
        name: String,
        variables: Context,
    },
    SignalBroadcastRequested(SignalBroadcast),
    SignalBroadcastAcknowledged {
        key: u64,
    },
    /// A call activity is about to start a child process instance (its ELEMENT_ACTIVATING
    /// follows).
    ProcessCalled(CallLink),
    /// The child process instance ended (completed, or terminated with or without its caller).
    CallEnded(CallLink),
    /// An interrupting event subprocess started in this container: tokens that were on their
    /// way in it (on flows, waiting at joins) are gone.
    ScopeInterrupted {
        scope: u64,
    },
    /// A multi-instance body's counters changed.
    LoopCounted {
        body: u64,
        counts: LoopCounts,
    },
}

impl Event {
    /// Zeebe's name for the record (value type and intent), as conformance tests read them.
    pub fn intent(&self) -> &'static str {
        match self {
            Event::ProcessDeployed(_) => "PROCESS_DEPLOYED",
            Event::ElementActivating { .. } => "ELEMENT_ACTIVATING",
            Event::Element { intent, .. } => match intent {
                Lifecycle::Activated => "ELEMENT_ACTIVATED",
                Lifecycle::Completing => "ELEMENT_COMPLETING",
                Lifecycle::Completed => "ELEMENT_COMPLETED",
                Lifecycle::Terminating => "ELEMENT_TERMINATING",
                Lifecycle::Terminated => "ELEMENT_TERMINATED",
            },
            Event::SequenceFlowTaken { .. } => "SEQUENCE_FLOW_TAKEN",
            Event::VariableCreated { .. } => "VARIABLE_CREATED",
            Event::VariableUpdated { .. } => "VARIABLE_UPDATED",
            Event::JobCreated(_) => "JOB_CREATED",
            Event::JobCompleted { .. } => "JOB_COMPLETED",
            Event::JobFailed { .. } => "JOB_FAILED",
            Event::JobRecurred { .. } => "JOB_RECURRED",
            Event::JobErrorThrown { .. } => "JOB_ERROR_THROWN",
            Event::JobCanceled { .. } => "JOB_CANCELED",
            Event::JobRetriesUpdated { .. } => "JOB_RETRIES_UPDATED",
            Event::IncidentCreated(_) => "INCIDENT_CREATED",
            Event::IncidentResolved { .. } => "INCIDENT_RESOLVED",
            Event::MessagePublished(_) => "MESSAGE_PUBLISHED",
            Event::MessageExpired { .. } => "MESSAGE_EXPIRED",
            Event::MessageCorrelated { .. } => "MESSAGE_CORRELATED",
            Event::SubscriptionOpened(_) => "MESSAGE_SUBSCRIPTION_CREATED",
            Event::SubscriptionClosed { .. } => "MESSAGE_SUBSCRIPTION_DELETED",
            Event::StartSubscriptionOpened { .. } => "MESSAGE_START_EVENT_SUBSCRIPTION_CREATED",
            Event::StartSubscriptionClosed { .. } => "MESSAGE_START_EVENT_SUBSCRIPTION_DELETED",
            Event::TimerCreated(_) => "TIMER_CREATED",
            Event::TimerTriggered { .. } => "TIMER_TRIGGERED",
            Event::TimerCanceled { .. } => "TIMER_CANCELED",
            Event::CompensationSubscribed(_) => "COMPENSATION_SUBSCRIPTION_CREATED",
            Event::CompensationTriggered { .. } => "COMPENSATION_SUBSCRIPTION_TRIGGERED",
            Event::PublishRequested(_) => "MESSAGE_PUBLISH_REQUESTED",
            Event::PublishAcknowledged { .. } => "MESSAGE_PUBLISH_ACKNOWLEDGED",
            Event::ElementMigrated { .. } => "ELEMENT_MIGRATED",
            Event::LoopCounted { .. } => "MULTI_INSTANCE_COUNTED",
            Event::ScopeInterrupted { .. } => "SCOPE_INTERRUPTED",
            Event::ProcessCalled(_) => "PROCESS_CALLED",
            Event::CallEnded(_) => "CALL_ENDED",
            Event::SignalSubscriptionOpened(_) => "SIGNAL_SUBSCRIPTION_CREATED",
            Event::SignalSubscriptionClosed { .. } => "SIGNAL_SUBSCRIPTION_DELETED",
            Event::SignalReceived { .. } => "SIGNAL_BROADCASTED",
            Event::SignalBroadcastRequested(_) => "SIGNAL_BROADCAST_REQUESTED",
            Event::SignalBroadcastAcknowledged { .. } => "SIGNAL_BROADCAST_ACKNOWLEDGED",
        }
    }

    /// The element an element lifecycle event is about: (definition, element).
    pub fn element(&self) -> Option<(u64, ElementIdx)> {
        match self {
            Event::ElementActivating { element, .. } => Some((element.definition, element.element)),
            Event::Element { element, .. } => Some((element.definition, element.element)),
            _ => None,
        }
    }
}
