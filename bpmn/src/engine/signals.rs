//! Signals, as Zeebe broadcasts them: no correlation key; every element waiting for the name
//! gets it (start events start an instance of the latest version, catch events complete,
//! boundary events and event-subprocess starts fire). A throw or end event does not deliver
//! its signal itself: it asks the runtime ([`SignalBroadcast`] in the outbox) to send it to
//! every sidecar whose processes wait for that name, this one included, each of which takes it
//! as a [`Command::BroadcastSignal`](super::Command::BroadcastSignal). So a signal reaches the
//! whole mesh, once per sidecar.

use super::action::Action;
use super::context::Ctx;
use super::event::Event;
use super::records::{
    ElementInstance, ElementState, IncidentKind, SignalBroadcast, SignalSubscription,
};
use super::{Error, behavior, instance, lifecycle, variables};
use crate::feel::{Context, NoVariables, Value};
use crate::model::{ElementIdx, Kind, Process, SignalRef, StartTrigger};

/// Opens a subscription for the signal of `element`, owned by `owner`; the name is evaluated
/// in `scope`. `Err`: the name could not be evaluated, for an incident.
pub(crate) fn open(
    ctx: &mut Ctx<'_>,
    owner: &ElementInstance,
    element: ElementIdx,
    signal: &SignalRef,
    scope: u64,
) -> Result<Result<(), String>, Error> {
    let name = match variables::eval_string(ctx, &signal.name, scope, "signal name", false)? {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    ctx.emit(Event::SignalSubscriptionOpened(SignalSubscription {
        owner: owner.key,
        element,
        instance: Some(owner.instance),
        definition: owner.definition,
        name,
    }))?;
    Ok(Ok(()))
}

/// Closes the signal subscriptions an element instance (or a definition's start events) opened.
pub(crate) fn close_owned(ctx: &mut Ctx<'_>, owner: u64) -> Result<(), Error> {
    for s in ctx.r().signal_subscriptions_of(owner)? {
        ctx.emit(Event::SignalSubscriptionClosed {
            owner: s.owner,
            element: s.element,
            name: s.name,
        })?;
    }
    Ok(())
}

/// Opens the signal start subscriptions of a newly deployed (latest) version.
pub(crate) fn open_starts(ctx: &mut Ctx<'_>, p: &Process, definition: u64) -> Result<(), Error> {
    for start in p.triggered_starts() {
        let Kind::StartEvent(StartTrigger::Signal(signal)) = &p.element(start).kind else {
            continue;
        };
        let name = match signal.name.evaluate(&NoVariables, ctx.now_ts()) {
            Ok(e) => match e.value {
                Value::String(s) if !s.is_empty() => s,
                other => {
                    return Err(Error::Corrupt(format!(
                        "signal start event {} has no name at deployment (it was {})",
                        p.element(start).id,
                        other.type_name()
                    )));
                }
            },
            Err(e) => {
                return Err(Error::Corrupt(format!(
                    "signal start event {}: {e}",
                    p.element(start).id
                )));
            }
        };
        ctx.emit(Event::SignalSubscriptionOpened(SignalSubscription {
            owner: definition,
            element: start,
            instance: None,
            definition,
            name,
        }))?;
    }
    Ok(())
}

/// A signal arrived (thrown here or anywhere in the mesh, or sent by a client): every element
/// waiting for its name gets it, in the order they began to wait.
pub(crate) fn receive(ctx: &mut Ctx<'_>, name: &str, variables: Context) -> Result<(), Error> {
    ctx.emit(Event::SignalReceived {
        name: name.to_owned(),
        variables: variables.clone(),
    })?;
    for (owner, element) in ctx.r().signal_subscriptions_for(name)? {
        // What an earlier one triggered may have ended this one.
        let Some(s) = ctx.r().signal_subscription(owner, element)? else {
            continue;
        };
        let Some(_) = s.instance else {
            instance::start(ctx, s.definition, s.element, variables.clone(), None)?;
            continue;
        };
        let Some(o) = ctx.r().element(owner)? else {
            continue;
        };
        if o.state != ElementState::Activated {
            continue;
        }
        let model = ctx.model(o.definition)?;
        let kind = &model.element(o.element).kind;
        if element == o.element || matches!(kind, Kind::EventBasedGateway) {
            behavior::of(kind).trigger(ctx, &o, &model, element, Some(variables.clone()))?;
        } else {
            lifecycle::trigger_attached(ctx, owner, element, &model, Some(variables.clone()))?;
        }
    }
    Ok(())
}

/// A signal throw or end event: evaluates the name and asks the runtime to broadcast the
/// signal with the event's local variables (its input mappings). Returns false when an
/// incident stopped it.
pub(crate) fn throw(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    signal: &SignalRef,
) -> Result<bool, Error> {
    let name = match variables::eval_string(ctx, &signal.name, el.key, "signal name", false)? {
        Ok(n) => n,
        Err(msg) => {
            ctx.incident(el.key, IncidentKind::Expression, msg, None)?;
            return Ok(false);
        }
    };
    let key = ctx.new_key();
    let broadcast = SignalBroadcast {
        key,
        name,
        variables: ctx.r().local_variables(el.key)?.into_iter().collect(),
        id: format!("flowmesh-signal-{key}"),
        instance: el.instance,
        element_instance: el.key,
    };
    ctx.emit(Event::SignalBroadcastRequested(broadcast.clone()))?;
    ctx.actions.push(Action::Signal(broadcast));
    Ok(true)
}
