//! Process instance modification, as Zeebe defines it: activate elements of a running
//! instance as if a flow had reached them, and terminate element instances; all instructions
//! are checked before any is applied, so a refused modification changes nothing. An element
//! inside a subprocess is activated in the subprocess's one active instance, which is created
//! (without its start event) when there is none.

use super::command::Rejection;
use super::context::{Activation, Ctx};
use super::event::{ElementRef, Event, Lifecycle};
use super::records::{ElementInstance, ElementState, IncidentKind};
use super::{Error, lifecycle, variables};
use crate::feel::Context;
use crate::model::{ElementIdx, Kind, Process};

pub(crate) fn modify(
    ctx: &mut Ctx<'_>,
    instance: u64,
    activate: &[String],
    terminate: &[u64],
    vars: Context,
) -> Result<Result<(), Rejection>, Error> {
    let root = match ctx.r().element(instance)? {
        Some(e) if e.scope.is_none() && e.state == ElementState::Activated => e,
        Some(e) if e.scope.is_some() => {
            return Ok(Err(Rejection::invalid(format!(
                "{instance} is an element instance, not a process instance"
            ))));
        }
        _ => {
            return Ok(Err(Rejection::not_found(format!(
                "no active process instance {instance}"
            ))));
        }
    };
    if activate.is_empty() && terminate.is_empty() {
        return Ok(Err(Rejection::invalid(
            "the modification has no instruction: name elements to activate or element instances to terminate",
        )));
    }
    let model = ctx.model(root.definition)?;
    let active = tree(ctx, instance)?;
    // Check everything first.
    let mut targets = Vec::new();
    for id in activate {
        let Some(idx) = model.element_by_id(id) else {
            return Ok(Err(Rejection::invalid(format!(
                "process '{}' has no element '{id}'",
                model.id
            ))));
        };
        if let Some(why) = not_activatable(&model, idx) {
            return Ok(Err(Rejection::invalid(format!(
                "cannot activate '{id}': {why}"
            ))));
        }
        for container in containers(&model, idx) {
            let n = active
                .iter()
                .filter(|e| e.element == container && e.state == ElementState::Activated)
                .count();
            if n > 1 {
                return Ok(Err(Rejection::state(format!(
                    "cannot activate '{id}': subprocess '{}' has {n} active instances, so it is unclear in which",
                    model.element(container).id
                ))));
            }
        }
        targets.push(idx);
    }
    for key in terminate {
        match active.iter().find(|e| e.key == *key) {
            None => {
                return Ok(Err(Rejection::not_found(format!(
                    "instance {instance} has no active element instance {key}"
                ))));
            }
            Some(e) if e.scope.is_none() => {
                return Ok(Err(Rejection::invalid(
                    "the process instance itself is not terminated by a modification; cancel it instead",
                )));
            }
            Some(e) if e.state == ElementState::Terminating => {
                return Ok(Err(Rejection::state(format!(
                    "element instance {key} is already terminating"
                ))));
            }
            Some(_) => {}
        }
    }
    // Then apply: variables, activations, terminations (Zeebe's order).
    for (name, value) in vars {
        variables::set_local(ctx, instance, instance, &name, value)?;
    }
    for idx in targets {
        let scope = scope_for(ctx, &root, &model, idx)?;
        lifecycle::activate(
            ctx,
            Activation {
                definition: root.definition,
                instance,
                scope,
                element: idx,
                consumed: Vec::new(),
                joined: false,
                payload: None,
                compensating: None,
            },
        )?;
    }
    for key in terminate {
        let Some(e) = ctx.r().element(*key)? else {
            continue; // ended with an instance terminated before it
        };
        let scope = e.scope;
        lifecycle::terminate(ctx, *key)?;
        // A scope left with nothing active ends too, up to the process instance.
        let mut up = scope;
        while let Some(s) = up {
            let Some(se) = ctx.r().element(s)? else { break };
            if se.state != ElementState::Activated || se.active_children > 0 || se.active_flows > 0
            {
                break;
            }
            up = se.scope;
            lifecycle::terminate(ctx, s)?;
        }
    }
    Ok(Ok(()))
}

/// Why an element cannot be activated by a modification, as in Zeebe.
fn not_activatable(model: &Process, idx: ElementIdx) -> Option<&'static str> {
    let e = model.element(idx);
    match &e.kind {
        Kind::Process => Some("it is the process; create an instance instead"),
        Kind::StartEvent(_) => Some("it is a start event"),
        Kind::Boundary(_) => {
            Some("it is a boundary event; activate its activity or what follows it")
        }
        Kind::Unsupported(what) => Some(what),
        Kind::EventSubProcess(_) => Some(
            "it is an event subprocess; it starts by its trigger (activate an element inside it)",
        ),
        _ if containers(model, idx)
            .iter()
            .any(|c| matches!(model.element(*c).kind, Kind::MultiInstance(_))) =>
        {
            Some("it is inside a multi-instance activity; activate the activity itself")
        }
        _ if e.incoming.iter().any(|f| {
            matches!(
                model.element(model.flow(*f).source).kind,
                Kind::EventBasedGateway
            )
        }) =>
        {
            Some("it is an event after an event-based gateway; activate the gateway")
        }
        _ if e.for_compensation => Some("it is a compensation handler"),
        _ => None,
    }
}

/// The subprocesses around an element, innermost first (not the process).
fn containers(model: &Process, idx: ElementIdx) -> Vec<ElementIdx> {
    let mut out = Vec::new();
    let mut scope = model.element(idx).scope;
    while let Some(s) = scope {
        if s == Process::ROOT {
            break;
        }
        out.push(s);
        scope = model.element(s).scope;
    }
    out
}

/// Every element instance of a process instance, the process instance included.
pub(super) fn tree(ctx: &mut Ctx<'_>, instance: u64) -> Result<Vec<ElementInstance>, Error> {
    let mut out = Vec::new();
    let mut todo = vec![instance];
    while let Some(key) = todo.pop() {
        if let Some(e) = ctx.r().element(key)? {
            todo.extend(ctx.r().children(key)?);
            out.push(e);
        }
    }
    Ok(out)
}

/// The element instance key of the flow scope `idx` activates in: the process instance, or
/// the one active instance of its subprocess, created (outermost first) when there is none.
fn scope_for(
    ctx: &mut Ctx<'_>,
    root: &ElementInstance,
    model: &Process,
    idx: ElementIdx,
) -> Result<u64, Error> {
    let mut scope = root.key;
    for container in containers(model, idx).into_iter().rev() {
        let existing = ctx
            .r()
            .children(scope)?
            .into_iter()
            .map(|k| ctx.r().element(k))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .find(|e| e.element == container && e.state == ElementState::Activated);
        scope = match existing {
            Some(e) => e.key,
            None => open_container(ctx, root, scope, model, container)?,
        };
    }
    Ok(scope)
}

/// A subprocess instance for a modification: activated with its boundary events but without
/// its start event or input mappings, as Zeebe does.
fn open_container(
    ctx: &mut Ctx<'_>,
    root: &ElementInstance,
    scope: u64,
    model: &Process,
    container: ElementIdx,
) -> Result<u64, Error> {
    let key = ctx.new_key();
    let el = ElementInstance::activating(
        key,
        root.instance,
        root.definition,
        container,
        Some(scope),
        ctx.now,
    );
    ctx.emit(Event::ElementActivating {
        element: el.clone(),
        consumed: Vec::new(),
        joined: false,
    })?;
    if let Err(msg) = lifecycle::open_boundaries(ctx, &el, model)? {
        ctx.incident(key, IncidentKind::Expression, msg, None)?;
        return Ok(key);
    }
    if let Err(msg) = super::event_subprocess::open(ctx, &el, model)? {
        ctx.incident(key, IncidentKind::Expression, msg, None)?;
        return Ok(key);
    }
    ctx.emit(Event::Element {
        intent: Lifecycle::Activated,
        element: ElementRef::of(&el),
        at: ctx.now,
    })?;
    Ok(key)
}
