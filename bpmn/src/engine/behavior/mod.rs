//! One behaviour per BPMN element family, each with the same hooks. Adding an element is adding
//! a file here and an arm in [`of`].

mod boundary_event;
mod call_activity;
mod catch_event;
mod container;
mod end_event;
mod event_based_gateway;
mod event_subprocess;
mod exclusive_gateway;
mod inclusive_gateway;
mod job_task;
mod multi_instance_body;
mod parallel_gateway;
mod pass_through;
mod receive_task;
mod script_task;
mod start_event;
mod throw_event;

use super::Error;
use super::context::Ctx;
use super::lifecycle::{self, Leave};
use super::records::ElementInstance;
use crate::feel::Context;
use crate::model::{ElementIdx, Kind, Process, Script, TaskKind};

pub(crate) use job_task::{activation, create_job, job_def};

/// What an element does between ACTIVATING and COMPLETING.
pub(crate) trait Behavior: Sync {
    /// The element is ACTIVATING (input mappings applied, boundary events open): do its work,
    /// emit ACTIVATED, and complete it when it has nothing to wait for. A failing expression
    /// raises an incident instead.
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        payload: Option<Context>,
    ) -> Result<(), Error>;

    /// What the element waits for arrived: a message or timer for a catch event or receive
    /// task, or, for an event-based gateway, the event after it (`element`).
    fn trigger(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        _model: &Process,
        _element: ElementIdx,
        payload: Option<Context>,
    ) -> Result<(), Error> {
        lifecycle::complete(ctx, el.key, payload, Leave::All)
    }

    /// Resolving an incident raised while the element was ACTIVATED runs this.
    fn resume(
        &self,
        _ctx: &mut Ctx<'_>,
        _el: &ElementInstance,
        _model: &Process,
    ) -> Result<(), Error> {
        Ok(())
    }
}

pub(crate) fn of(kind: &Kind) -> &'static dyn Behavior {
    match kind {
        Kind::Process | Kind::SubProcess => &container::Container,
        Kind::EventSubProcess(_) => &event_subprocess::EventSubProcess,
        Kind::StartEvent(_) => &start_event::StartEvent,
        Kind::EndEvent(_) => &end_event::EndEvent,
        Kind::IntermediateCatch(_) => &catch_event::CatchEvent,
        Kind::IntermediateThrow(_) => &throw_event::ThrowEvent,
        Kind::Boundary(_) => &boundary_event::BoundaryEvent,
        Kind::Task(TaskKind::Job(_) | TaskKind::User(_) | TaskKind::Script(Script::Job(_))) => {
            &job_task::JobTask
        }
        Kind::Task(TaskKind::Script(Script::Expression { .. })) => &script_task::ScriptTask,
        Kind::Task(TaskKind::Receive { .. }) => &receive_task::ReceiveTask,
        Kind::Task(TaskKind::PassThrough) => &pass_through::PassThrough,
        Kind::MultiInstance(_) => &multi_instance_body::MultiInstanceBody,
        Kind::CallActivity(_) => &call_activity::CallActivity,
        Kind::ExclusiveGateway => &exclusive_gateway::ExclusiveGateway,
        Kind::ParallelGateway => &parallel_gateway::ParallelGateway,
        Kind::InclusiveGateway => &inclusive_gateway::InclusiveGateway,
        Kind::EventBasedGateway => &event_based_gateway::EventBasedGateway,
        Kind::Unsupported(_) => &Unsupported,
    }
}

/// A message throw or end event without a job: the engine publishes the message, then the
/// event completes (unless an incident stopped it).
pub(crate) fn publish_and_complete(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    publish: &crate::model::MessagePublish,
    leave: Leave,
) -> Result<(), Error> {
    if super::messages::publish_from_model(ctx, el, publish)? {
        lifecycle::activated(ctx, el)?;
        lifecycle::complete(ctx, el.key, None, leave)?;
    }
    Ok(())
}

/// A signal throw or end event: the runtime broadcasts the signal, then the event completes
/// (unless an incident on its name stopped it).
pub(crate) fn broadcast_and_complete(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    signal: &crate::model::SignalRef,
    leave: Leave,
) -> Result<(), Error> {
    if super::signals::throw(ctx, el, signal)? {
        lifecycle::activated(ctx, el)?;
        lifecycle::complete(ctx, el.key, None, leave)?;
    }
    Ok(())
}

/// A compensation throw or end event: starts the handlers and waits for them; with none to run
/// it completes at once.
pub(crate) fn compensate(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    target: Option<ElementIdx>,
    leave: Leave,
) -> Result<(), Error> {
    lifecycle::activated(ctx, el)?;
    if super::compensation::throw(ctx, el, target)? == 0 {
        lifecycle::complete(ctx, el.key, None, leave)?;
    }
    Ok(())
}

/// Deployment refuses models with unsupported elements; reaching one means state is corrupt.
struct Unsupported;

impl Behavior for Unsupported {
    fn activate(
        &self,
        _: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        Err(Error::Corrupt(format!(
            "element {} of process {} cannot run, yet an instance reached it",
            model.element(el.element).id,
            model.id
        )))
    }
}

/// The outgoing flows of a gateway whose conditions hold, in model order (only the first when
/// `first_only`), else its default flow. `None` when an incident was raised instead: a
/// condition that cannot be evaluated, or none true and no default.
pub(super) fn choose_flows(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    model: &Process,
    first_only: bool,
) -> Result<Option<Vec<crate::model::FlowIdx>>, Error> {
    use super::records::IncidentKind;
    use super::variables;
    let m = model.element(el.element);
    let mut chosen = Vec::new();
    if m.outgoing.len() == 1 && model.flow(m.outgoing[0]).condition.is_none() {
        chosen.push(m.outgoing[0]);
    } else {
        for f in &m.outgoing {
            if Some(*f) == m.default_flow {
                continue;
            }
            let Some(cond) = &model.flow(*f).condition else {
                continue;
            };
            match variables::eval_bool(ctx, cond, el.key)? {
                Ok(true) => {
                    chosen.push(*f);
                    if first_only {
                        break;
                    }
                }
                Ok(false) => {}
                Err(msg) => {
                    ctx.incident(el.key, IncidentKind::Condition, msg, None)?;
                    return Ok(None);
                }
            }
        }
    }
    if chosen.is_empty() {
        let Some(default) = m.default_flow else {
            let conditions: Vec<_> = m
                .outgoing
                .iter()
                .filter_map(|f| model.flow(*f).condition.as_ref())
                .collect();
            let msg =
                "expected at least one condition to evaluate to true, or to have a default flow"
                    .to_owned();
            let msg = variables::explain(ctx, &conditions, el.key, msg)?;
            ctx.incident(el.key, IncidentKind::Condition, msg, None)?;
            return Ok(None);
        };
        chosen.push(default);
    }
    Ok(Some(chosen))
}
