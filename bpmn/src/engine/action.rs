//! Actions: side effects the engine asks the runtime to perform after the batch commits. They
//! are data, never calls; each carries an idempotency key (the job key, the message id).

use crate::feel::Context;

use super::records::{Publication, SignalBroadcast};

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Perform a job and report back with CompleteJob, FailJob or ThrowError.
    Job(JobActivation),
    /// Route a message; acknowledge with AckPublication once it is safely handed on.
    Publish(Publication),
    /// Broadcast a signal to every sidecar whose processes wait for it (this one included, as a
    /// BroadcastSignal command); acknowledge with AckPublication once it is handed on.
    Signal(SignalBroadcast),
}

#[derive(Clone, Debug, PartialEq)]
pub struct JobActivation {
    pub key: u64,
    pub job_type: String,
    pub retries: u32,
    pub instance: u64,
    pub definition: u64,
    pub process_id: String,
    pub version: u32,
    pub element_id: String,
    pub element_instance: u64,
    /// Every variable the element sees, inner scopes shadowing outer ones.
    pub variables: Context,
    pub headers: Vec<(String, String)>,
}
