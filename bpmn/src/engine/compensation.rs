//! Compensation: a compensation throw or end event invokes the handlers of the completed
//! activities of its container (or of one named activity) and waits until they are done.

use super::Error;
use super::context::{Activation, Ctx};
use super::event::Event;
use super::lifecycle::{self, Leave};
use super::records::{ElementInstance, ElementState};
use crate::feel::Context;
use crate::model::{ElementIdx, Kind};

/// Starts the handlers for the thrower; returns how many it waits for.
pub(crate) fn throw(
    ctx: &mut Ctx<'_>,
    thrower: &ElementInstance,
    target: Option<ElementIdx>,
) -> Result<u32, Error> {
    let Some(scope) = thrower.scope else {
        return Ok(0);
    };
    let subs: Vec<_> = ctx
        .r()
        .compensations(scope)?
        .into_iter()
        .filter(|c| target.is_none_or(|t| t == c.activity))
        .collect();
    for sub in &subs {
        ctx.emit(Event::CompensationTriggered {
            scope,
            key: sub.key,
        })?;
        let base = Activation {
            definition: sub.definition,
            instance: sub.instance,
            scope,
            element: sub.boundary,
            consumed: Vec::new(),
            joined: false,
            payload: None,
            compensating: None,
        };
        lifecycle::activate(ctx, base.clone())?;
        lifecycle::activate(
            ctx,
            Activation {
                element: sub.handler,
                payload: None,
                compensating: Some(thrower.key),
                ..base
            },
        )?;
    }
    Ok(subs.len() as u32)
}

/// A compensation handler ended: the thrower completes once none is left.
pub(crate) fn handler_ended(ctx: &mut Ctx<'_>, thrower: u64) -> Result<(), Error> {
    let Some(t) = ctx.r().element(thrower)? else {
        return Ok(());
    };
    if t.waiting == 0 && t.state == ElementState::Activated {
        let model = ctx.model(t.definition)?;
        let leave = if matches!(model.element(t.element).kind, Kind::EndEvent(_)) {
            Leave::Nothing
        } else {
            Leave::All
        };
        lifecycle::complete(ctx, thrower, None::<Context>, leave)?;
    }
    Ok(())
}
