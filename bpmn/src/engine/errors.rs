//! BPMN errors: thrown by a job or an error end event, caught by the nearest error boundary
//! event on the way out (a matching code before a catch-all), which interrupts its activity.

use super::context::Ctx;
use super::{Error, lifecycle};
use crate::feel::Context;
use crate::model::{BoundaryTrigger, ElementIdx, Kind, Process};

/// Throws an error from element instance `from`; returns whether something caught it.
pub(crate) fn throw(
    ctx: &mut Ctx<'_>,
    from: u64,
    code: &str,
    payload: Option<Context>,
) -> Result<bool, Error> {
    let mut current = Some(from);
    while let Some(key) = current {
        let el = ctx.r().element_required(key)?;
        let model = ctx.model(el.definition)?;
        if let Some(boundary) = catcher(&model, el.element, code) {
            lifecycle::trigger_boundary(ctx, key, boundary, true, payload)?;
            return Ok(true);
        }
        current = el.scope;
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
