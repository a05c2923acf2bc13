//! Conditional events, which Zeebe does not have: an intermediate catch event that waits until
//! its condition holds, and boundary events and event-subprocess start events (interrupting or
//! not) that fire when theirs does.
//! Their conditions are evaluated again whenever a process instance's variables changed: after
//! the work of a command, for every instance it changed, the waiting catch events and the
//! active activities with conditional boundary events are looked up from the instance's
//! element tree (no separate subscription state to keep in step).

use super::context::Ctx;
use super::lifecycle;
use super::records::{ElementInstance, ElementState, IncidentKind};
use super::{Error, behavior, event_subprocess, variables};
use crate::model::{BoundaryTrigger, CatchTrigger, Kind, Process, StartTrigger};

/// How many times in one command conditions are checked again after what they triggered
/// changed variables.
pub(crate) const MAX_ROUNDS: usize = 32;

/// Checks the conditional events of every instance whose variables changed.
pub(crate) fn check(ctx: &mut Ctx<'_>) -> Result<(), Error> {
    let changed = std::mem::take(&mut ctx.changed);
    for instance in changed {
        let Some(root) = ctx.r().element(instance)? else {
            continue;
        };
        let model = ctx.model(root.definition)?;
        if !model.elements.iter().any(is_conditional) {
            continue;
        }
        let mut todo = vec![instance];
        while let Some(key) = todo.pop() {
            // An earlier trigger may have ended this part of the tree.
            let Some(el) = ctx.r().element(key)? else {
                continue;
            };
            if el.state != ElementState::Activated {
                continue;
            }
            todo.extend(ctx.r().children(key)?);
            let model = ctx.model(el.definition)?;
            let m = model.element(el.element);
            if let Kind::IntermediateCatch(CatchTrigger::Conditional(condition)) = &m.kind {
                match variables::eval_bool(ctx, condition, el.key)? {
                    Ok(true) => {
                        behavior::of(&m.kind).trigger(ctx, &el, &model, el.element, None)?
                    }
                    Ok(false) => {}
                    Err(msg) => ctx.incident(el.key, IncidentKind::Condition, msg, None)?,
                }
                continue;
            }
            if m.is_container() {
                check_event_subprocesses(ctx, &el, &model)?;
            }
            for b in m.boundaries.clone() {
                let Kind::Boundary(boundary) = &model.element(b).kind else {
                    continue;
                };
                let BoundaryTrigger::Conditional(condition) = &boundary.trigger else {
                    continue;
                };
                // A condition that cannot be evaluated does not fire; the activity goes on.
                if variables::eval_bool(ctx, condition, el.key)? == Ok(true) {
                    lifecycle::trigger_boundary(ctx, el.key, b, boundary.interrupting, None)?;
                    if boundary.interrupting {
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The conditional starts of a running container's event subprocesses; none once an
/// interrupting one runs.
fn check_event_subprocesses(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    model: &Process,
) -> Result<(), Error> {
    for (_, sub) in model.event_subprocesses(el.element) {
        let Kind::StartEvent(StartTrigger::Conditional(condition)) = &model.element(sub.start).kind
        else {
            continue;
        };
        if event_subprocess::interrupted(ctx, el.key, model)? {
            return Ok(());
        }
        if variables::eval_bool(ctx, condition, el.key)? == Ok(true) {
            event_subprocess::trigger(ctx, el.key, sub.start, None)?;
        }
    }
    Ok(())
}

fn is_conditional(e: &crate::model::Element) -> bool {
    matches!(
        &e.kind,
        Kind::IntermediateCatch(CatchTrigger::Conditional(_))
            | Kind::StartEvent(StartTrigger::Conditional(_))
            | Kind::Boundary(crate::model::Boundary {
                trigger: BoundaryTrigger::Conditional(_),
                ..
            })
    )
}
