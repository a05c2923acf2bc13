//! Event subprocesses, as Zeebe runs them: while a container (the process or a subprocess)
//! runs, the start events of the event subprocesses inside it wait: message subscriptions and
//! timers are opened when it activates and closed when it ends; errors and escalations thrown
//! inside it are matched on their way out; conditions are checked when variables change.
//!
//! ```text
//!  trigger ─► interrupting? ─yes─► other waits closed, everything else in the container
//!     │                            terminated, tokens on the way dropped
//!     └────────────────────────────► event subprocess ACTIVATING in the container ─► start event
//! ```
//!
//! The container completes when nothing is left in it, the event subprocess included.

use super::context::{Activation, Ctx};
use super::event::Event;
use super::lifecycle;
use super::records::{ElementInstance, ElementState};
use super::{Error, messages, signals};
use crate::feel::Context;
use crate::model::{ElementIdx, Kind, Process, StartTrigger};

/// Opens the waits of the event subprocesses of container instance `el`: message
/// subscriptions (name and key evaluated in the container) and timers. `Err`: an expression
/// failed, for an incident.
pub(crate) fn open(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    model: &Process,
) -> Result<Result<(), String>, Error> {
    for (_, sub) in model.event_subprocesses(el.element) {
        let opened = match &model.element(sub.start).kind {
            Kind::StartEvent(StartTrigger::Message(m)) => {
                messages::open_subscription(ctx, el, sub.start, m, sub.interrupting, el.key)?
            }
            Kind::StartEvent(StartTrigger::Timer(def)) => {
                lifecycle::open_timer(ctx, el, sub.start, def)?
            }
            Kind::StartEvent(StartTrigger::Signal(s)) => {
                signals::open(ctx, el, sub.start, s, el.key)?
            }
            _ => Ok(()),
        };
        if opened.is_err() {
            return Ok(opened);
        }
    }
    Ok(Ok(()))
}

/// Whether a container has event subprocesses whose start waits for a message, a signal or a
/// timer.
pub(crate) fn waits(model: &Process, container: ElementIdx) -> bool {
    model.event_subprocesses(container).any(|(_, sub)| {
        matches!(
            model.element(sub.start).kind,
            Kind::StartEvent(
                StartTrigger::Message(_) | StartTrigger::Timer(_) | StartTrigger::Signal(_)
            )
        )
    })
}

/// Whether a container has event subprocesses with message starts (buffered messages may be
/// waiting for them).
pub(crate) fn waits_for_messages(model: &Process, container: ElementIdx) -> bool {
    model.event_subprocesses(container).any(|(_, sub)| {
        matches!(
            model.element(sub.start).kind,
            Kind::StartEvent(StartTrigger::Message(_))
        )
    })
}

/// The start event `start` of an event subprocess fired inside container instance
/// `container`: an interrupting one ends everything else in the container first; then the
/// event subprocess runs, its start event completing with `payload`.
pub(crate) fn trigger(
    ctx: &mut Ctx<'_>,
    container: u64,
    start: ElementIdx,
    payload: Option<Context>,
) -> Result<(), Error> {
    let Some(c) = ctx.r().element(container)? else {
        return Ok(());
    };
    if c.state != ElementState::Activated {
        return Ok(());
    }
    let model = ctx.model(c.definition)?;
    let Some(esp) = model.element(start).scope else {
        return Ok(());
    };
    if model.interrupts(start) {
        interrupt(ctx, &c, &model)?;
    }
    lifecycle::activate(
        ctx,
        Activation {
            definition: c.definition,
            instance: c.instance,
            scope: c.key,
            element: esp,
            consumed: Vec::new(),
            joined: false,
            payload: Some(payload.unwrap_or_default()),
            compensating: None,
        },
    )
}

/// An interrupting event subprocess starts: the other event subprocesses wait no more, every
/// element instance in the container is terminated, and tokens on their way are dropped.
fn interrupt(ctx: &mut Ctx<'_>, c: &ElementInstance, model: &Process) -> Result<(), Error> {
    let is_start = |e: ElementIdx| matches!(model.element(e).kind, Kind::StartEvent(_));
    for s in ctx.r().subscriptions_of(c.key)? {
        if is_start(s.element) {
            ctx.emit(Event::SubscriptionClosed {
                owner: s.owner,
                element: s.element,
            })?;
        }
    }
    for t in ctx.r().timers_of(c.key)? {
        if let Some(timer) = ctx.r().timer(t)?
            && is_start(timer.element)
        {
            ctx.emit(Event::TimerCanceled { key: t })?;
        }
    }
    for s in ctx.r().signal_subscriptions_of(c.key)? {
        if is_start(s.element) {
            ctx.emit(Event::SignalSubscriptionClosed {
                owner: s.owner,
                element: s.element,
                name: s.name,
            })?;
        }
    }
    for child in ctx.r().children(c.key)? {
        lifecycle::terminate(ctx, child)?;
    }
    ctx.queue.retain(|a| a.scope != c.key);
    ctx.emit(Event::ScopeInterrupted { scope: c.key })
}

/// Whether an interrupting event subprocess already runs in container instance `container`
/// (then nothing else may start in it).
pub(crate) fn interrupted(ctx: &Ctx<'_>, container: u64, model: &Process) -> Result<bool, Error> {
    for child in ctx.r().children(container)? {
        let Some(el) = ctx.r().element(child)? else {
            continue;
        };
        if let Kind::EventSubProcess(sub) = &model.element(el.element).kind
            && sub.interrupting
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The start event of an event subprocess of `container` that catches a thrown error or
/// escalation: one naming the code before a catch-all; `code_of` reads a start's code.
pub(crate) fn catcher<'m>(
    model: &'m Process,
    container: ElementIdx,
    code: &str,
    code_of: impl Fn(&'m StartTrigger) -> Option<Option<&'m str>>,
) -> Option<ElementIdx> {
    let caught = |wanted: Option<&str>| {
        model.event_subprocesses(container).find_map(|(_, sub)| {
            let Kind::StartEvent(trigger) = &model.element(sub.start).kind else {
                return None;
            };
            (code_of(trigger) == Some(wanted)).then_some(sub.start)
        })
    };
    caught(Some(code)).or_else(|| caught(None))
}
