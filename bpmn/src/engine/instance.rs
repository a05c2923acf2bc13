//! Process instances: created at a none start event, by a message or a timer; cancelled.

use super::command::Rejection;
use super::context::{Activation, Ctx};
use super::event::Event;
use super::records::ElementInstance;
use super::records::{CallLink, IncidentKind};
use super::{Error, event_subprocess, lifecycle, messages, variables};
use crate::feel::Context;
use crate::model::{ElementIdx, Process};

/// Starts an instance of a definition at `start`, with variables on the process scope.
pub(crate) fn start(
    ctx: &mut Ctx<'_>,
    definition: u64,
    start: ElementIdx,
    vars: Context,
    start_key: Option<String>,
) -> Result<u64, Error> {
    start_from(ctx, definition, start, vars, start_key, None)
}

/// Starts a child instance for the call activity instance `caller` (of process instance
/// `caller_instance`).
pub(crate) fn start_called(
    ctx: &mut Ctx<'_>,
    definition: u64,
    start: ElementIdx,
    vars: Context,
    caller: &ElementInstance,
) -> Result<u64, Error> {
    start_from(ctx, definition, start, vars, None, Some(caller))
}

fn start_from(
    ctx: &mut Ctx<'_>,
    definition: u64,
    start: ElementIdx,
    vars: Context,
    start_key: Option<String>,
    caller: Option<&ElementInstance>,
) -> Result<u64, Error> {
    let key = ctx.new_key();
    if let Some(c) = caller {
        ctx.emit(Event::ProcessCalled(CallLink {
            child: key,
            parent: c.key,
            parent_instance: c.instance,
        }))?;
    }
    let root = ElementInstance {
        start_key,
        ..ElementInstance::activating(key, key, definition, Process::ROOT, None, ctx.now)
    };
    ctx.emit(Event::ElementActivating {
        element: root.clone(),
        consumed: Vec::new(),
        joined: false,
    })?;
    for (name, value) in vars {
        variables::set_local(ctx, key, key, &name, value)?;
    }
    let model = ctx.model(definition)?;
    if let Err(msg) = event_subprocess::open(ctx, &root, &model)? {
        // Resolving it runs the activation again, from the none start event.
        ctx.incident(key, IncidentKind::Expression, msg, None)?;
        return Ok(key);
    }
    lifecycle::activated(ctx, &root)?;
    ctx.queue.push_back(Activation {
        definition,
        instance: key,
        scope: key,
        element: start,
        consumed: Vec::new(),
        joined: false,
        // The trigger has happened: the start element completes at once.
        payload: Some(Context::new()),
        compensating: None,
    });
    if event_subprocess::waits_for_messages(&model, Process::ROOT) {
        messages::correlate_buffered(ctx, key)?;
    }
    Ok(key)
}

/// `CreateInstance`: the latest (or named) version, at its none start event.
pub(crate) fn create(
    ctx: &mut Ctx<'_>,
    process_id: &str,
    version: Option<u32>,
    vars: Context,
) -> Result<Result<u64, Rejection>, Error> {
    let versions = ctx.r().versions(process_id)?;
    let found = match version {
        Some(v) => versions.iter().find(|(ver, _)| *ver == v).map(|(_, k)| *k),
        None => versions.last().map(|(_, k)| *k),
    };
    let Some(definition) = found else {
        let msg = match (version, versions.is_empty()) {
            (_, true) => format!("no process with id '{process_id}' is deployed; deploy it first"),
            (Some(v), false) => format!(
                "process '{process_id}' has no version {v}; deployed versions: {}",
                versions
                    .iter()
                    .map(|(v, _)| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (None, false) => format!("process '{process_id}' is not deployed"),
        };
        return Ok(Err(Rejection::not_found(msg)));
    };
    let model = ctx.model(definition)?;
    let Some(start) = model.none_start(Process::ROOT) else {
        return Ok(Err(Rejection::invalid(format!(
            "process '{process_id}' has no none start event; it starts when its message is published or its timer fires"
        ))));
    };
    Ok(Ok(self::start(ctx, definition, start, vars, None)?))
}

/// `CancelInstance`: terminates the instance and all it contains.
pub(crate) fn cancel(ctx: &mut Ctx<'_>, instance: u64) -> Result<Result<(), Rejection>, Error> {
    match ctx.r().element(instance)? {
        Some(e) if e.scope.is_none() => {
            if let Some(link) = ctx.r().caller(instance)? {
                return Ok(Err(Rejection::invalid(format!(
                    "{instance} was started by call activity instance {} of process instance {}; cancel that instance instead",
                    link.parent, link.parent_instance
                ))));
            }
        }
        Some(_) => {
            return Ok(Err(Rejection::invalid(format!(
                "{instance} is an element instance, not a process instance"
            ))));
        }
        None => {
            return Ok(Err(Rejection::not_found(format!(
                "no active process instance {instance}"
            ))));
        }
    }
    lifecycle::terminate(ctx, instance)?;
    Ok(Ok(()))
}
