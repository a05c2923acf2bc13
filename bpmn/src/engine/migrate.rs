//! Process instance migration to another version of the same process, as Zeebe defines it
//! for active elements: each is mapped by a mapping instruction to an element of the same type
//! in the matching scope; jobs keep what they were created with; the waits of the mapped
//! elements (message subscriptions, timers, boundary events) are closed and opened anew from
//! the target model, except waits whose catch event is mapped to one with the same trigger
//! (the element's own, or a boundary event mapped by an instruction): those move, a timer with
//! its due time, a subscription with its message name and correlation key. Everything is checked before anything changes; what cannot be migrated
//! safely is refused with the reason.

use std::collections::HashMap;

use super::command::Rejection;
use super::context::Ctx;
use super::event::Event;
use super::records::{
    ElementInstance, ElementState, IncidentKind, SignalSubscription, Subscription, Timer,
};
use super::{Error, lifecycle, messages};
use crate::model::{BoundaryTrigger, CatchTrigger, ElementIdx, Kind, Process, TaskKind};

pub(crate) fn migrate(
    ctx: &mut Ctx<'_>,
    instance: u64,
    version: u32,
    mappings: &[(String, String)],
) -> Result<Result<(), Rejection>, Error> {
    let root = match ctx.r().element(instance)? {
        Some(e) if e.scope.is_none() && e.state == ElementState::Activated => e,
        _ => {
            return Ok(Err(Rejection::not_found(format!(
                "no active process instance {instance}"
            ))));
        }
    };
    let source = ctx.model(root.definition)?;
    let Some(target_key) = ctx
        .r()
        .versions(&source.id)?
        .into_iter()
        .find(|(v, _)| *v == version)
        .map(|(_, k)| k)
    else {
        return Ok(Err(Rejection::not_found(format!(
            "process '{}' has no version {version}",
            source.id
        ))));
    };
    if target_key == root.definition {
        return Ok(Err(Rejection::invalid(format!(
            "instance {instance} already runs version {version}"
        ))));
    }
    let target = ctx.model(target_key)?;
    let has_event_subprocess = |p: &Process| {
        p.elements
            .iter()
            .any(|e| matches!(e.kind, Kind::EventSubProcess(_)))
    };
    if has_event_subprocess(&source) || has_event_subprocess(&target) {
        return Ok(Err(Rejection::invalid(
            "the process has event subprocesses, whose waits cannot be moved between versions yet; let the instance finish on its version",
        )));
    }
    let mut map: HashMap<&str, &str> = HashMap::new();
    for (from, to) in mappings {
        if source.element_by_id(from).is_none() {
            return Ok(Err(Rejection::invalid(format!(
                "mapping {from} → {to}: the running version has no element '{from}'"
            ))));
        }
        if target.element_by_id(to).is_none() {
            return Ok(Err(Rejection::invalid(format!(
                "mapping {from} → {to}: version {version} has no element '{to}'"
            ))));
        }
        if map.insert(from, to).is_some() {
            return Ok(Err(Rejection::invalid(format!(
                "element '{from}' is mapped twice; map it once"
            ))));
        }
    }
    // A boundary event maps to a boundary event with the same trigger (its wait moves along).
    for (from, to) in &map {
        let (Some(f), Some(t)) = (source.element_by_id(from), target.element_by_id(to)) else {
            continue;
        };
        if let Kind::Boundary(fb) = &source.element(f).kind {
            let same = match &target.element(t).kind {
                Kind::Boundary(tb) => {
                    std::mem::discriminant(&fb.trigger) == std::mem::discriminant(&tb.trigger)
                }
                _ => false,
            };
            if !same {
                return Ok(Err(Rejection::invalid(format!(
                    "cannot map boundary event '{from}' to '{to}': map it to a boundary event with the same trigger"
                ))));
            }
        }
    }
    let active = super::modify::tree(ctx, instance)?;
    let mut plan: Vec<(ElementInstance, ElementIdx)> = Vec::new();
    for e in &active {
        if e.scope.is_none() {
            if e.has_joins {
                // Tokens waiting in a join counter are keyed by flows of the old version.
                for f in join_flows(&source, Process::ROOT) {
                    if ctx.r().taken(e.key, f)? > 0 {
                        return Ok(Err(Rejection::state(
                            "tokens wait at a joining gateway; migrate once they have joined",
                        )));
                    }
                }
            }
            if e.has_compensations {
                return Ok(Err(Rejection::state(
                    "the instance has completed activities with compensation handlers; their subscriptions cannot be moved yet",
                )));
            }
            continue;
        }
        let from = source.element(e.element);
        let Some(to_id) = map.get(from.id.as_str()) else {
            return Ok(Err(Rejection::invalid(format!(
                "active element '{}' has no mapping instruction; map it to an element of version {version}",
                from.id
            ))));
        };
        let Some(to) = target.element_by_id(to_id) else {
            continue; // checked above
        };
        let to_el = target.element(to);
        if to_el.tag != from.tag {
            return Ok(Err(Rejection::invalid(format!(
                "cannot map '{}' ({}) to '{}' ({}): the element type would change",
                from.id, from.tag, to_el.id, to_el.tag
            ))));
        }
        if e.state != ElementState::Activated {
            return Ok(Err(Rejection::state(format!(
                "element '{}' is between steps (an incident while it activates or completes?); resolve that first",
                from.id
            ))));
        }
        if matches!(
            from.kind,
            Kind::EventBasedGateway | Kind::MultiInstance(_) | Kind::CallActivity(_)
        ) || e.compensating.is_some()
            || e.has_joins
        {
            return Ok(Err(Rejection::state(format!(
                "element '{}' cannot be migrated while it is active (event-based gateway, multi-instance or call activity, compensation or joining tokens)",
                from.id
            ))));
        }
        // The scope must stay the same: the mapped container of the element's container.
        let parent_target = match e.scope {
            Some(s) if s == instance => Some(Process::ROOT),
            Some(s) => active
                .iter()
                .find(|p| p.key == s)
                .and_then(|p| map.get(source.element(p.element).id.as_str()))
                .and_then(|id| target.element_by_id(id)),
            None => None,
        };
        if to_el.scope != parent_target {
            return Ok(Err(Rejection::invalid(format!(
                "mapping '{}' → '{}' changes the element's scope; map it within the matching (sub)process",
                from.id, to_el.id
            ))));
        }
        plan.push((e.clone(), to));
    }
    // Apply: the waits of the old elements close, the instance moves, the new waits open. A
    // wait whose catch event is mapped (the element's own, or a boundary event mapped by an
    // instruction) to one with the same trigger moves instead, as in Zeebe: a timer keeps its
    // due time, a message subscription its name and key, a signal subscription its name.
    let mut kept: Vec<Kept> = Vec::new();
    for (e, to) in &plan {
        let target_of = |catch: ElementIdx| {
            let mapped = if catch == e.element {
                Some(*to)
            } else {
                map.get(source.element(catch).id.as_str())
                    .and_then(|id| target.element_by_id(id))
            };
            mapped.filter(|c| same_trigger(&source, catch, &target, *c, *to))
        };
        for t in ctx.r().timers_of(e.key)? {
            if let Some(timer) = ctx.r().timer(t)?
                && let Some(catch) = target_of(timer.element)
            {
                kept.push(Kept::Timer(timer, catch));
            }
        }
        for sub in ctx.r().subscriptions_of(e.key)? {
            if let Some(catch) = target_of(sub.element) {
                kept.push(Kept::Message(sub, catch));
            }
        }
        for sub in ctx.r().signal_subscriptions_of(e.key)? {
            if let Some(catch) = target_of(sub.element) {
                kept.push(Kept::Signal(sub, catch));
            }
        }
        lifecycle::close_owned(ctx, e.key)?;
    }
    ctx.emit(Event::ElementMigrated {
        key: instance,
        instance,
        definition: target_key,
        element: Process::ROOT,
    })?;
    for (e, to) in &plan {
        ctx.emit(Event::ElementMigrated {
            key: e.key,
            instance,
            definition: target_key,
            element: *to,
        })?;
    }
    let mut moved_waits = Vec::with_capacity(kept.len());
    for k in kept {
        let event = match k {
            Kept::Timer(timer, catch) => {
                moved_waits.push(catch);
                Event::TimerCreated(Timer {
                    key: ctx.new_key(),
                    definition: target_key,
                    element: catch,
                    ..timer
                })
            }
            Kept::Message(sub, catch) => {
                moved_waits.push(catch);
                Event::SubscriptionOpened(Subscription {
                    definition: target_key,
                    element: catch,
                    interrupting: interrupts(&target, catch),
                    ..sub
                })
            }
            Kept::Signal(sub, catch) => {
                moved_waits.push(catch);
                Event::SignalSubscriptionOpened(SignalSubscription {
                    definition: target_key,
                    element: catch,
                    ..sub
                })
            }
        };
        ctx.emit(event)?;
    }
    for (e, to) in plan {
        let moved = ElementInstance {
            definition: target_key,
            element: to,
            ..e
        };
        if let Err(msg) = reopen(ctx, &moved, &target, &moved_waits)? {
            ctx.incident(moved.key, IncidentKind::Expression, msg, None)?;
        }
    }
    Ok(Ok(()))
}

/// A wait that moves with its element to the target version, and its catch event there.
enum Kept {
    Timer(Timer, ElementIdx),
    Message(Subscription, ElementIdx),
    Signal(SignalSubscription, ElementIdx),
}

/// Whether the wait of catch event `from` (source) can move to `to` (target) for the element
/// mapped to `element`: the element itself, or a boundary event attached to it, with the same
/// trigger.
fn same_trigger(
    source: &Process,
    from: ElementIdx,
    target: &Process,
    to: ElementIdx,
    element: ElementIdx,
) -> bool {
    let trigger = |p: &Process, idx: ElementIdx, own: bool| -> Option<&'static str> {
        match &p.element(idx).kind {
            Kind::Boundary(b) if !own => Some(match b.trigger {
                BoundaryTrigger::Timer(_) => "timer",
                BoundaryTrigger::Message(_) => "message",
                BoundaryTrigger::Signal(_) => "signal",
                _ => return None,
            }),
            Kind::IntermediateCatch(CatchTrigger::Timer(_)) if own => Some("timer"),
            Kind::IntermediateCatch(CatchTrigger::Message(_))
            | Kind::Task(TaskKind::Receive { .. })
                if own =>
            {
                Some("message")
            }
            Kind::IntermediateCatch(CatchTrigger::Signal(_)) if own => Some("signal"),
            _ => None,
        }
    };
    let own = to == element;
    if !own && !matches!(&target.element(to).kind, Kind::Boundary(b) if b.attached_to == element) {
        return false;
    }
    let was = trigger(source, from, own);
    was.is_some() && was == trigger(target, to, own)
}

/// Whether a catch event interrupts: a boundary event by its flag; the element's own wait does.
fn interrupts(model: &Process, catch: ElementIdx) -> bool {
    match &model.element(catch).kind {
        Kind::Boundary(b) => b.interrupting,
        _ => true,
    }
}

/// Opens the waits a migrated element has in its new model: its boundary events, and what it
/// waits for itself (a catch event's or receive task's message, a catch event's timer), but
/// not those `kept` (moved) from before.
fn reopen(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    model: &Process,
    kept: &[ElementIdx],
) -> Result<Result<(), String>, Error> {
    for b in &model.element(el.element).boundaries {
        if kept.contains(b) {
            continue;
        }
        let opened = lifecycle::open_boundary(ctx, el, *b, model)?;
        if opened.is_err() {
            return Ok(opened);
        }
    }
    if kept.contains(&el.element) {
        return Ok(Ok(()));
    }
    let opened = match &model.element(el.element).kind {
        Kind::IntermediateCatch(CatchTrigger::Message(m)) => {
            messages::open_subscription(ctx, el, el.element, m, true, el.key)?
        }
        Kind::Task(TaskKind::Receive { message, .. }) => {
            messages::open_subscription(ctx, el, el.element, message, true, el.key)?
        }
        Kind::IntermediateCatch(CatchTrigger::Timer(def)) => {
            lifecycle::open_timer(ctx, el, el.element, def)?
        }
        Kind::IntermediateCatch(CatchTrigger::Signal(s)) => {
            super::signals::open(ctx, el, el.element, s, el.key)?
        }
        _ => Ok(()),
    };
    if opened.is_ok() {
        messages::correlate_buffered(ctx, el.key)?;
    }
    Ok(opened)
}

/// The incoming flows of the joining gateways directly in `container`.
fn join_flows(model: &Process, container: ElementIdx) -> Vec<crate::model::FlowIdx> {
    model
        .element(container)
        .children
        .iter()
        .map(|c| model.element(*c))
        .filter(|e| {
            matches!(e.kind, Kind::ParallelGateway | Kind::InclusiveGateway) && e.incoming.len() > 1
        })
        .flat_map(|e| e.incoming.iter().copied())
        .collect()
}
