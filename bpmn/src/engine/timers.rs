//! Time: due timers fire (start timers start instances, catch events complete, boundary events
//! fire and repeat), failed jobs come back after their backoff, buffered messages expire.

use super::context::Ctx;
use super::event::Event;
use super::records::{ElementState, Timer};
use super::{Error, behavior, instance, jobs, lifecycle, messages, variables};
use crate::feel::temporal::IsoDuration;
use crate::feel::{Context, Value};
use crate::model::{BoundaryTrigger, CatchTrigger, Kind, StartTrigger};

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
fn next(ctx: &mut Ctx<'_>, t: &Timer) -> Result<Option<Timer>, Error> {
    let Some(r) = t.repeat else {
        return Ok(None);
    };
    if r.months == 0 && r.nanos == 0 {
        return next_by_cron(ctx, t);
    }
    Ok(next_interval(t, r))
}

fn next_interval(t: &Timer, r: super::records::Repeat) -> Option<Timer> {
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

/// A cron cycle keeps no interval: its timer event's expression is read again (in the owner's
/// scope, for a boundary or catch event) and asked for the firing after this one. A cycle that
/// no longer reads as a cron ends.
fn next_by_cron(ctx: &mut Ctx<'_>, t: &Timer) -> Result<Option<Timer>, Error> {
    let model = ctx.model(t.definition)?;
    let def = match &model.element(t.element).kind {
        Kind::StartEvent(StartTrigger::Timer(d))
        | Kind::IntermediateCatch(CatchTrigger::Timer(d)) => d,
        Kind::Boundary(b) => match &b.trigger {
            BoundaryTrigger::Timer(d) => d,
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let value = if def.expr.is_constant() {
        Value::from(def.expr.source())
    } else {
        let Some(owner) = t.owner else {
            return Ok(None);
        };
        match variables::eval(ctx, &def.expr, owner, None)? {
            Ok(v) => v,
            Err(_) => return Ok(None),
        }
    };
    let Ok(after) = jiff::Timestamp::from_millisecond(t.due) else {
        return Ok(None);
    };
    let Ok(schedule) = def.schedule_from(&value, after) else {
        return Ok(None);
    };
    let mut n = t.clone();
    n.due = schedule.due.as_millisecond();
    Ok(Some(n))
}

fn fire(ctx: &mut Ctx<'_>, t: Timer) -> Result<(), Error> {
    ctx.emit(Event::TimerTriggered { key: t.key })?;
    let mut again = next(ctx, &t)?;
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
            } else {
                if model.interrupts(t.element) {
                    again = None;
                }
                lifecycle::trigger_attached(ctx, owner, t.element, &model, None)?;
            }
        }
    }
    if let Some(mut n) = again {
        n.key = ctx.new_key();
        ctx.emit(Event::TimerCreated(n))?;
    }
    Ok(())
}
