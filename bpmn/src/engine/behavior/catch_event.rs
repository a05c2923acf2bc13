//! Intermediate catch events: wait for a message (a subscription), a signal or a timer, then
//! complete;
//! a link catch event, reached from its link throw events, passes on at once; a conditional
//! one waits until its condition holds (see `engine::conditional`).

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
use crate::engine::records::IncidentKind;
use crate::engine::{messages, signals, variables};
use crate::feel::Context;
use crate::model::{CatchTrigger, Kind};

pub(super) struct CatchEvent;

impl Behavior for CatchEvent {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        payload: Option<Context>,
    ) -> Result<(), Error> {
        if let Some(received) = payload {
            // Reached from an event-based gateway: the event has already happened.
            lifecycle::activated(ctx, el)?;
            return lifecycle::complete(ctx, el.key, Some(received), Leave::All);
        }
        let opened = match &model.element(el.element).kind {
            Kind::IntermediateCatch(CatchTrigger::Message(m)) => {
                messages::open_subscription(ctx, el, el.element, m, true, el.key)?
            }
            Kind::IntermediateCatch(CatchTrigger::Timer(def)) => {
                lifecycle::open_timer(ctx, el, el.element, def)?
            }
            Kind::IntermediateCatch(CatchTrigger::Signal(s)) => {
                signals::open(ctx, el, el.element, s, el.key)?
            }
            Kind::IntermediateCatch(CatchTrigger::Link(_)) => {
                lifecycle::activated(ctx, el)?;
                return lifecycle::complete(ctx, el.key, None, Leave::All);
            }
            Kind::IntermediateCatch(CatchTrigger::Conditional(condition)) => {
                // True on arrival: passes at once; else waits for the variables to change.
                return match variables::eval_bool(ctx, condition, el.key)? {
                    Ok(true) => {
                        lifecycle::activated(ctx, el)?;
                        lifecycle::complete(ctx, el.key, None, Leave::All)
                    }
                    Ok(false) => lifecycle::activated(ctx, el),
                    Err(msg) => ctx.incident(el.key, IncidentKind::Condition, msg, None),
                };
            }
            _ => {
                return Err(Error::Corrupt(
                    "catch behaviour on another element".to_owned(),
                ));
            }
        };
        if let Err(msg) = opened {
            return ctx.incident(el.key, IncidentKind::Expression, msg, None);
        }
        lifecycle::activated(ctx, el)
    }
}
