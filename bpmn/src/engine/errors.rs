//! BPMN errors: thrown by a job or an error end event, caught on the way out by the nearest
//! error event subprocess of a container or error boundary event of an activity (a matching
//! code before a catch-all); both interrupt.

use super::context::Ctx;
use super::{Error, event_subprocess, lifecycle};
use crate::feel::Context;
use crate::model::{BoundaryTrigger, ElementIdx, Kind, Process, StartTrigger};

/// Throws an error from element instance `from`; returns whether something caught it.
pub(crate) fn throw(
    ctx: &mut Ctx<'_>,
    from: u64,
    code: &str,
    payload: Option<Context>,
) -> Result<bool, Error> {
    let mut current = Some(from);
    let mut below: Option<ElementIdx> = None;
    while let Some(key) = current {
        let el = ctx.r().element_required(key)?;
        let model = ctx.model(el.definition)?;
        // Inside a container its event subprocesses catch first, then its boundary events; an
        // error thrown inside an event subprocess goes past that subprocess's siblings.
        if !below.is_some_and(|b| matches!(model.element(b).kind, Kind::EventSubProcess(_)))
            && let Some(start) = event_subprocess::catcher(&model, el.element, code, |t| match t {
                StartTrigger::Error(c) => Some(c.as_deref()),
                _ => None,
            })
        {
            event_subprocess::trigger(ctx, key, start, payload)?;
            return Ok(true);
        }
        if let Some(boundary) = catcher(&model, el.element, code) {
            lifecycle::trigger_boundary(ctx, key, boundary, true, payload)?;
            return Ok(true);
        }
        below = Some(el.element);
        // Uncaught in a called process: on from the call activity that started it.
        current = match el.scope {
            Some(s) => Some(s),
            None => super::calls::caller_of(ctx, el.key)?,
        };
    }
    Ok(false)
}

/// The error boundary event of `element` that catches `code`: one naming the code, else a
/// catch-all.
fn catcher(model: &Process, element: ElementIdx, code: &str) -> Option<ElementIdx> {
    let boundaries = &model.element(element).boundaries;
    let error_code = |b: &ElementIdx| match &model.element(*b).kind {
        Kind::Boundary(bd) => match &bd.trigger {
            BoundaryTrigger::Error(c) => Some(c.as_deref()),
            _ => None,
        },
        _ => None,
    };
    boundaries
        .iter()
        .find(|b| error_code(b) == Some(Some(code)))
        .or_else(|| boundaries.iter().find(|b| error_code(b) == Some(None)))
        .copied()
}

pub(crate) fn uncaught_message(code: &str) -> String {
    format!(
        "An error was thrown with the code '{code}' but not caught: no error boundary event on the way to the process catches it."
    )
}
