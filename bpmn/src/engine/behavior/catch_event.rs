//! Intermediate catch events: wait for a message (a subscription) or a timer, then complete;
//! a link catch event, reached from its link throw events, passes on at once.

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
use crate::engine::messages;
use crate::engine::records::IncidentKind;
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
            Kind::IntermediateCatch(CatchTrigger::Link(_)) => {
                lifecycle::activated(ctx, el)?;
                return lifecycle::complete(ctx, el.key, None, Leave::All);
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
