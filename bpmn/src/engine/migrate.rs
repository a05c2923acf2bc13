//! Process instance migration to another version of the same process, as Zeebe defines it
//! for active elements: each is mapped by a mapping instruction to an element of the same type
//! in the matching scope; jobs keep what they were created with; the waits of the mapped
//! elements (message subscriptions, timers, boundary events) are closed and opened anew from
//! the target model, except timers whose catch event is mapped to a timer (the element's own,
//! or a boundary event mapped by an instruction): those keep their due time. Everything is checked before anything changes; what cannot be migrated
//! safely is refused with the reason.

use std::collections::HashMap;

use super::command::Rejection;
use super::context::Ctx;
use super::event::Event;
use super::records::{ElementInstance, ElementState, IncidentKind, Timer};
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
    // Apply: the waits of the old elements close, the instance moves, the new waits open;
    // a timer whose catch event is mapped to a timer keeps its due time (and repeats).
    let mut kept: Vec<(Timer, ElementIdx)> = Vec::new();
    for (e, to) in &plan {
        for t in ctx.r().timers_of(e.key)? {
            let Some(timer) = ctx.r().timer(t)? else {
                continue;
            };
            let mapped = if timer.element == e.element {
                Some(*to)
            } else {
                map.get(source.element(timer.element).id.as_str())
                    .and_then(|id| target.element_by_id(id))
            };
            if let Some(catch) = mapped.filter(|c| is_timer(&target, *c, *to)) {
                kept.push((timer, catch));
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
    for (timer, catch) in &kept {
        let key = ctx.new_key();
        ctx.emit(Event::TimerCreated(Timer {
            key,
            definition: target_key,
            element: *catch,
            ..timer.clone()
        }))?;
    }
    let kept: Vec<ElementIdx> = kept.into_iter().map(|(_, c)| c).collect();
    for (e, to) in plan {
        let moved = ElementInstance {
            definition: target_key,
            element: to,
            ..e
        };
        if let Err(msg) = reopen(ctx, &moved, &target, &kept)? {
            ctx.incident(moved.key, IncidentKind::Expression, msg, None)?;
        }
    }
    Ok(Ok(()))
}

/// Whether `catch` is the timer catch event `element` waits on itself, or one of its timer
/// boundary events.
fn is_timer(model: &Process, catch: ElementIdx, element: ElementIdx) -> bool {
    match &model.element(catch).kind {
        Kind::IntermediateCatch(CatchTrigger::Timer(_)) => catch == element,
        Kind::Boundary(b) => {
            b.attached_to == element && matches!(b.trigger, BoundaryTrigger::Timer(_))
        }
        _ => false,
    }
}

/// Opens the waits a migrated element has in its new model: its boundary events, and what it
/// waits for itself (a catch event's or receive task's message, a catch event's timer), but
/// not the timers `kept` from before.
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
