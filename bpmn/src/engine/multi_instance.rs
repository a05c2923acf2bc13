//! Multi-instance activities, as Zeebe runs them: a body instance holds one inner instance per
//! item of the input collection, all at once (parallel) or one after the other (sequential).
//!
//! ```text
//!  body ACTIVATING ─► collection evaluated ─► ACTIVATED ─► inner #1 … #n  (loopCounter, item)
//!  inner COMPLETING ─► outputs ─► outputElement collected, condition checked ─► COMPLETED
//!       └─► next item (sequential) / body COMPLETING once all are done or the condition held
//! ```
//!
//! The body's counters (instances, completed, terminated) are engine state, so the completion
//! condition sees `numberOfInstances`, `numberOfActiveInstances`, `numberOfCompletedInstances`
//! and `numberOfTerminatedInstances` as Zeebe gives them.

use rust_decimal::prelude::ToPrimitive;

use super::context::Ctx;
use super::event::Event;
use super::lifecycle::{self, Leave};
use super::records::{ElementInstance, ElementState, IncidentKind, LoopCounts};
use super::{Error, variables};
use crate::feel::{Context, Value};
use crate::model::MultiInstance;

/// The local variable of each inner instance that says which item it runs (from 1).
pub(crate) const LOOP_COUNTER: &str = "loopCounter";

/// The body activates: evaluates the collection and starts the inner instances. An empty
/// collection completes the body at once (the activity is skipped, with an empty output).
pub(crate) fn activate(
    ctx: &mut Ctx<'_>,
    body: &ElementInstance,
    mi: &MultiInstance,
) -> Result<(), Error> {
    let items = match collection(ctx, mi, body.key)? {
        Ok(items) => items,
        Err(msg) => return ctx.incident(body.key, IncidentKind::Expression, msg, None),
    };
    lifecycle::activated(ctx, body)?;
    if let Some(name) = &mi.output_collection {
        let empty = Value::List(vec![Value::Null; items.len()]);
        variables::set_local(ctx, body.key, body.instance, name, empty)?;
    }
    let instances = u32::try_from(items.len()).unwrap_or(u32::MAX);
    ctx.emit(Event::LoopCounted {
        body: body.key,
        counts: LoopCounts {
            instances,
            completed: 0,
            terminated: 0,
        },
    })?;
    if items.is_empty() {
        return complete_body(ctx, body, mi);
    }
    if mi.sequential {
        let first = items.into_iter().next().unwrap_or_default();
        return start_inner(ctx, body, mi, 1, first);
    }
    for (i, item) in items.into_iter().enumerate() {
        // An inner instance may end the body at once (an error its boundary event catches).
        if i > 0 && !still_active(ctx, body.key)? {
            break;
        }
        start_inner(ctx, body, mi, i as u32 + 1, item)?;
    }
    Ok(())
}

/// An incident on the body while it was ACTIVATED (the collection failed when the next
/// sequential item was due) was resolved: start that item.
pub(crate) fn resume(
    ctx: &mut Ctx<'_>,
    body: &ElementInstance,
    mi: &MultiInstance,
) -> Result<(), Error> {
    let counts = ctx.r().loop_counts(body.key)?;
    next_sequential(ctx, body, mi, counts.completed + counts.terminated, counts)
}

/// What an inner instance's completion decided, carried from before its COMPLETED event to
/// after it.
pub(crate) struct InnerDone {
    counter: u32,
    condition_met: bool,
}

/// An inner instance is completing (its output mappings applied): its output element goes into
/// the body's output collection and the completion condition is checked. `None`: an
/// expression failed and an incident was raised on the inner instance (resolving it runs the
/// completion again, so nothing is counted before both expressions succeeded).
pub(crate) fn inner_completing(
    ctx: &mut Ctx<'_>,
    inner: &ElementInstance,
    body: u64,
    mi: &MultiInstance,
) -> Result<Option<InnerDone>, Error> {
    let counter = ctx
        .r()
        .variable(inner.key, LOOP_COUNTER)?
        .and_then(|v| v.as_number())
        .and_then(|n| n.to_u32())
        .unwrap_or(0);
    let output = match &mi.output_element {
        Some(expr) => match variables::eval(ctx, expr, inner.key, None)? {
            Ok(v) => Some(v),
            Err(msg) => {
                ctx.incident(inner.key, IncidentKind::Expression, msg, None)?;
                return Ok(None);
            }
        },
        None => None,
    };
    let body_el = ctx.r().element_required(body)?;
    let mut counts = ctx.r().loop_counts(body)?;
    counts.completed += 1;
    let condition_met = match &mi.completion_condition {
        None => false,
        Some(cond) => {
            let mut extra = Context::new();
            let active = body_el.active_children.saturating_sub(1);
            for (name, n) in [
                ("numberOfInstances", counts.instances),
                ("numberOfActiveInstances", active),
                ("numberOfCompletedInstances", counts.completed),
                ("numberOfTerminatedInstances", counts.terminated),
            ] {
                extra.insert(name.to_owned(), Value::from(i64::from(n)));
            }
            match variables::eval(ctx, cond, inner.key, Some(&extra))? {
                Ok(Value::Bool(b)) => b,
                Ok(other) => {
                    let msg = format!(
                        "expected the completion condition '{}' to be a boolean, but it was {}",
                        cond.source(),
                        other.type_name()
                    );
                    ctx.incident(inner.key, IncidentKind::Expression, msg, None)?;
                    return Ok(None);
                }
                Err(msg) => {
                    ctx.incident(inner.key, IncidentKind::Expression, msg, None)?;
                    return Ok(None);
                }
            }
        }
    };
    if let (Some(name), Some(value)) = (&mi.output_collection, output) {
        let mut list = match ctx.r().variable(body, name)? {
            Some(Value::List(l)) => l,
            _ => Vec::new(),
        };
        let at = counter.saturating_sub(1) as usize;
        if list.len() <= at {
            list.resize(at + 1, Value::Null);
        }
        list[at] = value;
        variables::set_local(ctx, body, inner.instance, name, Value::List(list))?;
    }
    ctx.emit(Event::LoopCounted { body, counts })?;
    Ok(Some(InnerDone {
        counter,
        condition_met,
    }))
}

/// An inner instance completed: start the next item, or complete the body when every instance
/// is done or the completion condition held (terminating the instances still running).
pub(crate) fn inner_completed(
    ctx: &mut Ctx<'_>,
    body: u64,
    mi: &MultiInstance,
    done: InnerDone,
) -> Result<(), Error> {
    let Some(body) = ctx.r().element(body)? else {
        return Ok(());
    };
    if body.state != ElementState::Activated {
        return Ok(());
    }
    let mut counts = ctx.r().loop_counts(body.key)?;
    if done.condition_met {
        let running = ctx.r().children(body.key)?;
        if !running.is_empty() {
            for child in &running {
                lifecycle::terminate(ctx, *child)?;
            }
            counts.terminated += running.len() as u32;
            ctx.emit(Event::LoopCounted {
                body: body.key,
                counts,
            })?;
        }
        return complete_body(ctx, &body, mi);
    }
    if mi.sequential {
        return next_sequential(ctx, &body, mi, done.counter, counts);
    }
    if body.active_children == 0 && counts.completed + counts.terminated >= counts.instances {
        return complete_body(ctx, &body, mi);
    }
    Ok(())
}

/// After item `done` of a sequential body: the next one, or the body completes. The collection
/// is read again, as Zeebe does; when it fails, the body holds an incident until resolved.
fn next_sequential(
    ctx: &mut Ctx<'_>,
    body: &ElementInstance,
    mi: &MultiInstance,
    done: u32,
    counts: LoopCounts,
) -> Result<(), Error> {
    if done >= counts.instances {
        return complete_body(ctx, body, mi);
    }
    let items = match collection(ctx, mi, body.key)? {
        Ok(items) => items,
        Err(msg) => return ctx.incident(body.key, IncidentKind::Expression, msg, None),
    };
    match items.into_iter().nth(done as usize) {
        Some(item) => start_inner(ctx, body, mi, done + 1, item),
        // The collection shrank meanwhile: nothing is left to run.
        None => complete_body(ctx, body, mi),
    }
}

/// Activates inner instance `counter` for `item`: its `loopCounter` and input element are
/// local variables before its input mappings run (so the mappings can use them).
fn start_inner(
    ctx: &mut Ctx<'_>,
    body: &ElementInstance,
    mi: &MultiInstance,
    counter: u32,
    item: Value,
) -> Result<(), Error> {
    let key = ctx.new_key();
    let element = ElementInstance::activating(
        key,
        body.instance,
        body.definition,
        mi.inner,
        Some(body.key),
        ctx.now,
    );
    ctx.emit(Event::ElementActivating {
        element,
        consumed: Vec::new(),
        joined: false,
    })?;
    if let Some(name) = &mi.input_element {
        variables::set_local(ctx, key, body.instance, name, item)?;
    }
    variables::set_local(
        ctx,
        key,
        body.instance,
        LOOP_COUNTER,
        Value::from(i64::from(counter)),
    )?;
    lifecycle::run_activation(ctx, key, None)
}

/// Completes the body; its output collection goes to the enclosing scopes.
fn complete_body(
    ctx: &mut Ctx<'_>,
    body: &ElementInstance,
    mi: &MultiInstance,
) -> Result<(), Error> {
    // The collection is a local variable of the body: it goes out to the enclosing scopes
    // itself, not as a result (which the body's own variable would keep).
    if let (Some(name), Some(scope)) = (&mi.output_collection, body.scope) {
        let value = ctx
            .r()
            .variable(body.key, name)?
            .unwrap_or(Value::List(Vec::new()));
        let out = Context::from([(name.clone(), value)]);
        variables::merge(ctx, scope, body.instance, out)?;
    }
    lifecycle::complete(ctx, body.key, None, Leave::All)
}

fn still_active(ctx: &Ctx<'_>, key: u64) -> Result<bool, Error> {
    Ok(matches!(ctx.r().element(key)?, Some(e) if e.state == ElementState::Activated))
}

/// The input collection, evaluated in `scope`: a list, or why not.
fn collection(
    ctx: &Ctx<'_>,
    mi: &MultiInstance,
    scope: u64,
) -> Result<Result<Vec<Value>, String>, Error> {
    Ok(
        match variables::eval(ctx, &mi.input_collection, scope, None)? {
            Ok(Value::List(items)) => Ok(items),
            Ok(other) => Err(variables::explain(
                ctx,
                &[&mi.input_collection],
                scope,
                format!(
                    "expected the input collection '{}' to be a list, but it was {}",
                    mi.input_collection.source(),
                    other.type_name()
                ),
            )?),
            Err(msg) => Err(msg),
        },
    )
}
