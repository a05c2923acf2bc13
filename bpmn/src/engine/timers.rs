//! Time: due timers fire (start timers start instances, catch events complete, boundary events
//! fire and repeat), failed jobs come back after their backoff, buffered messages expire.

use super::context::Ctx;
use super::event::Event;
use super::records::{ElementState, Timer};
use super::{Error, behavior, instance, jobs, lifecycle, messages};
use crate::feel::Context;
use crate::feel::temporal::IsoDuration;
use crate::model::Kind;

/// Handles everything due at `ctx.now`, earliest first. `drain` runs follow-up work between
/// timers so each timer's consequences are complete before the next fires.
pub(crate) fn tick(
    ctx: &mut Ctx<'_>,
    drain: fn(&mut Ctx<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    for key in ctx.r().timers_due(ctx.now)? {
        if let Some(t) = ctx.r().timer(key)? {
            fire(ctx, t)?;
            drain(ctx)?;
        }
    }
    for key in ctx.r().jobs_due(ctx.now)? {
        ctx.emit(Event::JobRecurred { key })?;
        jobs::dispatch(ctx, key)?;
    }
    messages::expire(ctx)
}

/// The next firing of a repeating timer, if any.
fn next(t: &Timer) -> Option<Timer> {
    let r = t.repeat?;
    let remaining = match r.remaining {
        Some(n) if n <= 1 => return None,
        Some(n) => Some(n - 1),
        None => None,
    };
    let interval = IsoDuration {
        months: r.months,
        exact: jiff::SignedDuration::try_from_nanos_i128(r.nanos)?,
    };
    let due = interval
        .add_to(jiff::Timestamp::from_millisecond(t.due).ok()?)?
        .as_millisecond();
    let mut n = t.clone();
    n.due = due;
    n.repeat = Some(super::records::Repeat { remaining, ..r });
    Some(n)
}

fn fire(ctx: &mut Ctx<'_>, t: Timer) -> Result<(), Error> {
    ctx.emit(Event::TimerTriggered { key: t.key })?;
    let mut again = next(&t);
    match t.owner {
        None => {
            instance::start(ctx, t.definition, t.element, Context::new(), None)?;
        }
        Some(owner) => {
            let Some(o) = ctx.r().element(owner)? else {
                return Ok(());
            };
            if matches!(
                o.state,
                ElementState::Terminating | ElementState::Completing
            ) {
                return Ok(());
            }
            let model = ctx.model(o.definition)?;
            let kind = &model.element(o.element).kind;
            if t.element == o.element || matches!(kind, Kind::EventBasedGateway) {
                again = None;
                behavior::of(kind).trigger(ctx, &o, &model, t.element, None)?;
            } else if let Kind::Boundary(b) = &model.element(t.element).kind {
                if b.interrupting {
                    again = None;
                }
                lifecycle::trigger_boundary(ctx, owner, t.element, b.interrupting, None)?;
            }
        }
    }
    if let Some(mut n) = again {
        n.key = ctx.new_key();
        ctx.emit(Event::TimerCreated(n))?;
    }
    Ok(())
}
