//! BPMN escalations: thrown by an intermediate or end event, caught on the way out by the
//! nearest escalation event subprocess of a container or escalation boundary event of an
//! activity (a matching code before a catch-all). Unlike errors they are not critical:
//! uncaught, nothing happens; caught by a non-interrupting event, the thrower goes on as well;
//! only an interrupting one ends the activity (or the container's work) around the thrower.

use super::context::{Activation, Ctx};
use super::lifecycle::{self, Leave};
use super::records::{ElementInstance, IncidentKind};
use super::{Error, event_subprocess, variables};
use crate::model::{BoundaryTrigger, ElementIdx, EscalationThrow, Kind, Process, StartTrigger};

/// Evaluates the code, throws the escalation from `el`, and completes `el` with `leave` unless
/// an interrupting catch ended it.
pub(crate) fn throw_and_go_on(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    thrown: &EscalationThrow,
    leave: Leave,
) -> Result<(), Error> {
    let code = match variables::eval_string(ctx, &thrown.code, el.key, "escalation code", true)? {
        Ok(c) => c,
        Err(msg) => return ctx.incident(el.key, IncidentKind::Expression, msg, None),
    };
    if throw(ctx, el, &code)? {
        return Ok(());
    }
    lifecycle::complete(ctx, el.key, None, leave)
}

/// Throws from `el` up its scopes; returns whether an interrupting boundary event caught it
/// (then `el` is terminated with the activity).
fn throw(ctx: &mut Ctx<'_>, el: &ElementInstance, code: &str) -> Result<bool, Error> {
    let mut current = el.scope;
    let mut below = el.element;
    while let Some(key) = current {
        let scope = ctx.r().element_required(key)?;
        let model = ctx.model(scope.definition)?;
        if !matches!(model.element(below).kind, Kind::EventSubProcess(_))
            && let Some(start) = event_subprocess::catcher(&model, scope.element, code, |t| match t
            {
                StartTrigger::Escalation(c) => Some(c.as_deref()),
                _ => None,
            })
        {
            if model.interrupts(start) {
                event_subprocess::trigger(ctx, key, start, None)?;
                return Ok(true);
            }
            // The thrower goes on; the event subprocess's token comes after it.
            if let Some(esp) = model.element(start).scope {
                ctx.queue.push_back(Activation {
                    definition: scope.definition,
                    instance: scope.instance,
                    scope: key,
                    element: esp,
                    consumed: Vec::new(),
                    joined: false,
                    payload: Some(Default::default()),
                    compensating: None,
                });
            }
            return Ok(false);
        }
        below = scope.element;
        let up = match scope.scope {
            Some(s) => Some(s),
            None => super::calls::caller_of(ctx, scope.key)?,
        };
        if let Some((boundary, interrupting)) = catcher(&model, scope.element, code) {
            if interrupting {
                lifecycle::trigger_boundary(ctx, key, boundary, true, None)?;
                return Ok(true);
            }
            // The activity goes on; the boundary event's token comes after the thrower's.
            if let Some(outer) = scope.scope {
                ctx.queue.push_back(Activation {
                    definition: scope.definition,
                    instance: scope.instance,
                    scope: outer,
                    element: boundary,
                    consumed: Vec::new(),
                    joined: false,
                    payload: Some(Default::default()),
                    compensating: None,
                });
            }
            return Ok(false);
        }
        current = up;
    }
    Ok(false)
}

/// The escalation boundary event of `element` that catches `code`, and whether it interrupts.
fn catcher(model: &Process, element: ElementIdx, code: &str) -> Option<(ElementIdx, bool)> {
    let boundaries = &model.element(element).boundaries;
    let caught = |b: &ElementIdx| match &model.element(*b).kind {
        Kind::Boundary(bd) => match &bd.trigger {
            BoundaryTrigger::Escalation(c) => Some((c.as_deref(), bd.interrupting)),
            _ => None,
        },
        _ => None,
    };
    boundaries
        .iter()
        .find_map(|b| {
            caught(b)
                .filter(|(c, _)| *c == Some(code))
                .map(|(_, i)| (*b, i))
        })
        .or_else(|| {
            boundaries
                .iter()
                .find_map(|b| caught(b).filter(|(c, _)| c.is_none()).map(|(_, i)| (*b, i)))
        })
}
