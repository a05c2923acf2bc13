//! The conformance suite: one or more scenarios per row of the coverage table, each asserting
//! the exact sequence of element records where order matters, the way Zeebe's engine tests do.
//! Every store implementation runs all of them (`conformance_suite!`); one file per family.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use jiff::SignedDuration;
use serde_json::json;

use super::{Harness, vars};
use crate::engine::{Accepted, Command, Event, IncidentKind, RejectionKind};
use crate::feel::Value;
use crate::store::{Error as StoreError, Store, Table};

mod call_activity;
mod compensation;
mod conditional;
mod errors;
mod event_subprocess;
mod gateways;
mod messages;
mod multi_instance;
mod operations;
mod retail;
mod signals;
mod tasks;
mod timers;

pub use call_activity::*;
pub use compensation::*;
pub use conditional::*;
pub use errors::*;
pub use event_subprocess::*;
pub use gateways::*;
pub use messages::*;
pub use multi_instance::*;
pub use operations::*;
pub use retail::*;
pub use signals::*;
pub use tasks::*;
pub use timers::*;

pub const THREE_TASKS: &str = include_str!("../fixtures/three-tasks.bpmn");
pub const TASKS: &str = include_str!("../fixtures/tasks.bpmn");
pub const EXCLUSIVE: &str = include_str!("../fixtures/exclusive.bpmn");
pub const EXCLUSIVE_NO_DEFAULT: &str = include_str!("../fixtures/exclusive-no-default.bpmn");
pub const PARALLEL: &str = include_str!("../fixtures/parallel.bpmn");
pub const EVENT_GATEWAY: &str = include_str!("../fixtures/event-gateway.bpmn");
pub const MESSAGES: &str = include_str!("../fixtures/messages.bpmn");
pub const MESSAGE_TWICE: &str = include_str!("../fixtures/message-twice.bpmn");
pub const MESSAGE_START: &str = include_str!("../fixtures/message-start.bpmn");
pub const RECEIVE_INSTANTIATE: &str = include_str!("../fixtures/receive-instantiate.bpmn");
pub const TIMERS: &str = include_str!("../fixtures/timers.bpmn");
pub const TIMER_START: &str = include_str!("../fixtures/timer-start.bpmn");
pub const BOUNDARIES: &str = include_str!("../fixtures/boundaries.bpmn");
pub const SUBPROCESS: &str = include_str!("../fixtures/subprocess.bpmn");
pub const ERROR_END: &str = include_str!("../fixtures/error-end.bpmn");
pub const TERMINATE: &str = include_str!("../fixtures/terminate.bpmn");
pub const COMPENSATION: &str = include_str!("../fixtures/compensation.bpmn");
pub const COMPENSATION_SUBPROCESS: &str = include_str!("../fixtures/compensation-subprocess.bpmn");
pub const VARIABLES: &str = include_str!("../fixtures/variables.bpmn");
pub const RETAIL_ORDER: &str = include_str!("../fixtures/retail-order.bpmn");
pub const RETAIL_PAYMENT: &str = include_str!("../fixtures/retail-payment.bpmn");
pub const LINK: &str = include_str!("../fixtures/link.bpmn");
pub const ESCALATION: &str = include_str!("../fixtures/escalation.bpmn");
pub const INCLUSIVE: &str = include_str!("../fixtures/inclusive.bpmn");
pub const CRON: &str = include_str!("../fixtures/cron.bpmn");
pub const CONDITIONAL: &str = include_str!("../fixtures/conditional.bpmn");
pub const MODIFY: &str = include_str!("../fixtures/modify.bpmn");
pub const MIGRATE_V1: &str = include_str!("../fixtures/migrate-v1.bpmn");
pub const MIGRATE_V2: &str = include_str!("../fixtures/migrate-v2.bpmn");
pub const MULTI_INSTANCE: &str = include_str!("../fixtures/multi-instance.bpmn");
pub const EVENT_SUBPROCESS: &str = include_str!("../fixtures/event-subprocess.bpmn");
pub const SIGNALS: &str = include_str!("../fixtures/signals.bpmn");
pub const CALL_ACTIVITY: &str = include_str!("../fixtures/call-activity.bpmn");

fn s(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Asserts that `part` appears contiguously in `trail`.
fn assert_contains(trail: &[String], part: &[&str]) {
    let part = s(part);
    assert!(
        trail.windows(part.len()).any(|w| w == part.as_slice()),
        "expected the records\n  {part:#?}\nin order in\n  {trail:#?}"
    );
}

fn count(trail: &[String], record: &str) -> usize {
    trail.iter().filter(|r| *r == record).count()
}
