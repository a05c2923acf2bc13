//! End events: none, message (job or published), error (thrown to the nearest catching
//! boundary event), escalation (thrown the same way, without ending anything unless caught by
//! an interrupting one), terminate (ends everything else in the container), compensation and
//! signal (broadcast mesh-wide).

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, create_job, lifecycle};
use crate::engine::event::{ElementRef, Event, Lifecycle};
use crate::engine::records::IncidentKind;
use crate::engine::{errors, escalations, variables};
use crate::feel::Context;
use crate::model::{EndResult, Kind, MessageThrow};

pub(super) struct EndEvent;

impl Behavior for EndEvent {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        let Kind::EndEvent(result) = &model.element(el.element).kind else {
            return Err(Error::Corrupt(
                "end behaviour on another element".to_owned(),
            ));
        };
        match result {
            EndResult::None => {
                lifecycle::activated(ctx, el)?;
                lifecycle::complete(ctx, el.key, None, Leave::Nothing)
            }
            EndResult::Message(MessageThrow::Job(def)) => create_job(ctx, el, model, def),
            EndResult::Message(MessageThrow::Publish(p)) => {
                super::publish_and_complete(ctx, el, p, Leave::Nothing)
            }
            EndResult::Error(_) => {
                lifecycle::activated(ctx, el)?;
                self.resume(ctx, el, model)
            }
            EndResult::Terminate => {
                lifecycle::activated(ctx, el)?;
                terminate_rest(ctx, el)
            }
            EndResult::Compensation(target) => super::compensate(ctx, el, *target, Leave::Nothing),
            EndResult::Escalation(_) => {
                lifecycle::activated(ctx, el)?;
                self.resume(ctx, el, model)
            }
            EndResult::Signal(s) => super::broadcast_and_complete(ctx, el, s, Leave::Nothing),
        }
    }

    /// Error and escalation end events throw (again, after an incident) what they throw.
    fn resume(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
    ) -> Result<(), Error> {
        let thrown = match &model.element(el.element).kind {
            Kind::EndEvent(EndResult::Error(thrown)) => thrown,
            Kind::EndEvent(EndResult::Escalation(thrown)) => {
                return escalations::throw_and_go_on(ctx, el, thrown, Leave::Nothing);
            }
            _ => return Ok(()),
        };
        let code = match variables::eval_string(ctx, &thrown.code, el.key, "error code", true)? {
            Ok(c) => c,
            Err(msg) => return ctx.incident(el.key, IncidentKind::Expression, msg, None),
        };
        if !errors::throw(ctx, el.key, &code, None)? {
            let msg = errors::uncaught_message(&code);
            ctx.incident(el.key, IncidentKind::UnhandledError, msg, None)?;
        }
        Ok(())
    }
}

/// A terminate end event ends every other element of its container, then the container.
fn terminate_rest(ctx: &mut Ctx<'_>, el: &ElementInstance) -> Result<(), Error> {
    ctx.emit(Event::Element {
        intent: Lifecycle::Completing,
        element: ElementRef::of(el),
        at: ctx.now,
    })?;
    let Some(scope) = el.scope else { return Ok(()) };
    for sibling in ctx.r().children(scope)? {
        if sibling != el.key {
            lifecycle::terminate(ctx, sibling)?;
        }
    }
    ctx.emit(Event::Element {
        intent: Lifecycle::Completed,
        element: ElementRef::of(el),
        at: ctx.now,
    })?;
    // Tokens still on their way in this container are dropped with it.
    let s = ctx.r().element_required(scope)?;
    if s.active_children == 0 {
        lifecycle::complete(ctx, scope, None, Leave::All)?;
    }
    Ok(())
}
