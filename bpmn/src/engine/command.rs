//! Commands: what callers ask the engine to do, and what it answers.

use crate::feel::Context;

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Deploys the processes of a BPMN file; an unchanged process makes no new version.
    Deploy {
        resource: String,
        xml: String,
    },
    /// Starts an instance at the none start event of the latest (or the given) version.
    CreateInstance {
        process_id: String,
        version: Option<u32>,
        variables: Context,
    },
    /// Terminates a process instance and everything in it.
    CancelInstance {
        instance: u64,
    },
    /// Publishes a message: correlated to waiting subscriptions, buffered for `ttl_ms`.
    Publish {
        name: String,
        correlation_key: String,
        variables: Context,
        ttl_ms: i64,
        message_id: Option<String>,
    },
    CompleteJob {
        key: u64,
        variables: Context,
    },
    /// A job failed; with retries left it runs again after `backoff_ms`, else an incident.
    FailJob {
        key: u64,
        retries: u32,
        backoff_ms: u64,
        message: String,
    },
    /// A job reports a business error, caught by an error boundary or event with that code.
    ThrowError {
        key: u64,
        code: String,
        message: String,
        variables: Context,
    },
    UpdateJobRetries {
        key: u64,
        retries: u32,
    },
    /// Retries what failed: the job (with at least one retry) or the element step.
    ResolveIncident {
        key: u64,
    },
    /// Sets variables on an element instance's scope (`local`) or merges them up its scopes.
    SetVariables {
        scope: u64,
        variables: Context,
        local: bool,
    },
    /// The runtime routed a message the engine published, or a signal it asked to broadcast.
    AckPublication {
        key: u64,
    },
    /// A signal arrived (from a throw event here or elsewhere in the mesh, or from a client):
    /// every element waiting for `name` gets it, with `variables`.
    BroadcastSignal {
        name: String,
        variables: Context,
    },
    /// Fires due timers, reactivates jobs whose backoff ended, expires messages.
    Tick,
    /// Repairs a running instance, all or nothing: sets `variables` on its process scope,
    /// activates elements (by id) as if a flow had reached them, then terminates element
    /// instances (by key); a scope left with nothing active ends with them.
    ModifyInstance {
        instance: u64,
        activate: Vec<String>,
        terminate: Vec<u64>,
        variables: Context,
    },
    /// Moves a running instance to another version of its process: every active element is
    /// mapped (source id → target id) to an element of the same type in the same scope; the
    /// catch events and boundary events of the mapped elements are opened anew from the target.
    /// Refused, with the reason, when that cannot be done safely.
    MigrateInstance {
        instance: u64,
        version: u32,
        mappings: Vec<(String, String)>,
    },
}

/// What an accepted command produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Accepted {
    Deployed(Vec<Deployed>),
    Created { instance: u64 },
    Published { key: u64 },
    Done,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Deployed {
    pub process_id: String,
    pub version: u32,
    pub key: u64,
    /// The same XML was deployed before: no new version.
    pub duplicate: bool,
}

/// Why a command was refused. A refused command changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub kind: RejectionKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionKind {
    NotFound,
    InvalidArgument,
    InvalidState,
    Duplicate,
}

impl Rejection {
    pub(crate) fn not_found(message: impl Into<String>) -> Rejection {
        Rejection {
            kind: RejectionKind::NotFound,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Rejection {
        Rejection {
            kind: RejectionKind::InvalidArgument,
            message: message.into(),
        }
    }

    pub(crate) fn state(message: impl Into<String>) -> Rejection {
        Rejection {
            kind: RejectionKind::InvalidState,
            message: message.into(),
        }
    }

    pub(crate) fn duplicate(message: impl Into<String>) -> Rejection {
        Rejection {
            kind: RejectionKind::Duplicate,
            message: message.into(),
        }
    }
}

pub type CommandResult = Result<Accepted, Rejection>;
