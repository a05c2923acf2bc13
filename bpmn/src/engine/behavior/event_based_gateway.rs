//! Event-based gateways: wait for whichever event after them comes first (a message, a signal
//! or a timer); that one wins, the others are closed.

use super::{Behavior, Ctx, ElementIdx, ElementInstance, Error, Process, lifecycle};
use crate::engine::context::Activation;
use crate::engine::event::{ElementRef, Event, Lifecycle};
use crate::engine::records::IncidentKind;
use crate::engine::{messages, signals};
use crate::feel::Context;
use crate::model::{CatchTrigger, Kind};

pub(super) struct EventBasedGateway;

impl Behavior for EventBasedGateway {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        lifecycle::close_owned(ctx, el.key)?;
        for f in &model.element(el.element).outgoing {
            let target = model.flow(*f).target;
            let opened = match &model.element(target).kind {
                Kind::IntermediateCatch(CatchTrigger::Message(m)) => {
                    messages::open_subscription(ctx, el, target, m, true, el.key)?
                }
                Kind::IntermediateCatch(CatchTrigger::Timer(def)) => {
                    lifecycle::open_timer(ctx, el, target, def)?
                }
                Kind::IntermediateCatch(CatchTrigger::Signal(s)) => {
                    signals::open(ctx, el, target, s, el.key)?
                }
                _ => Ok(()),
            };
            if let Err(msg) = opened {
                return ctx.incident(el.key, IncidentKind::Expression, msg, None);
            }
        }
        lifecycle::activated(ctx, el)
    }

    /// The first event after the gateway happened: the gateway completes, closes the others,
    /// and the token goes to that event, which completes with what it received.
    fn trigger(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        element: ElementIdx,
        payload: Option<Context>,
    ) -> Result<(), Error> {
        let Some(flow) = model
            .element(el.element)
            .outgoing
            .iter()
            .copied()
            .find(|f| model.flow(*f).target == element)
        else {
            return Err(Error::Corrupt(
                "event-based gateway triggered by an event it does not lead to".to_owned(),
            ));
        };
        let Some(scope) = el.scope else { return Ok(()) };
        ctx.emit(Event::Element {
            intent: Lifecycle::Completing,
            element: ElementRef::of(el),
            at: ctx.now,
        })?;
        lifecycle::close_owned(ctx, el.key)?;
        ctx.emit(Event::Element {
            intent: Lifecycle::Completed,
            element: ElementRef::of(el),
            at: ctx.now,
        })?;
        ctx.emit(Event::SequenceFlowTaken {
            scope,
            flow,
            instance: el.instance,
            definition: el.definition,
            join: false,
        })?;
        // The event activates right away: nothing may come between the gateway and it.
        lifecycle::activate(
            ctx,
            Activation {
                definition: el.definition,
                instance: el.instance,
                scope,
                element,
                consumed: vec![flow],
                joined: false,
                payload: Some(payload.unwrap_or_default()),
                compensating: None,
            },
        )
    }
}
