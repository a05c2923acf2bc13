//! Call activities, as Zeebe runs them: the call activity starts a child process instance of
//! the called process (latest version, the one deployed from the same file as the caller, or
//! the latest with a version tag) at its none start event, with the caller's variables (all it sees, or only its
//! input mappings); it completes when the child completes, with the child's variables (all, or
//! what its output mappings pick). Terminating the call activity terminates the child; an
//! error or escalation the child does not catch goes on from the call activity.

use super::context::Ctx;
use super::event::Event;
use super::lifecycle::{self, Leave};
use super::records::{CallLink, ElementInstance, ElementState, IncidentKind};
use super::{Error, instance, variables};
use crate::feel::Context;
use crate::model::{CallActivity, CallBinding, Kind, Process};

/// How deep call activities may nest (Zeebe's default): a process that calls itself without
/// waiting raises an incident there instead of creating instances without end.
pub(crate) const MAX_DEPTH: usize = 1000;

/// The call activity `el` is activating (input mappings applied): starts the child instance.
pub(crate) fn call(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    model: &Process,
    call: &CallActivity,
) -> Result<(), Error> {
    let process_id =
        match variables::eval_string(ctx, &call.process_id, el.key, "called process id", false)? {
            Ok(id) => id,
            Err(msg) => return ctx.incident(el.key, IncidentKind::Expression, msg, None),
        };
    if depth(ctx, el.instance)? + 1 >= MAX_DEPTH {
        let msg = format!(
            "the call activity would start a process instance nested {MAX_DEPTH} deep; a process that calls itself needs a way to stop"
        );
        return ctx.incident(el.key, IncidentKind::CalledElement, msg, None);
    }
    let definition = match resolve(ctx, el, &process_id, &call.binding)? {
        Ok(d) => d,
        Err(msg) => return ctx.incident(el.key, IncidentKind::CalledElement, msg, None),
    };
    let child = ctx.model(definition)?;
    let Some(start) = child.none_start(Process::ROOT) else {
        let msg = format!(
            "process '{process_id}' has no none start event; a call activity starts the called process there"
        );
        return ctx.incident(el.key, IncidentKind::CalledElement, msg, None);
    };
    let vars = if call.propagate_parent {
        let mut vars = variables::visible(ctx.r(), el.key)?;
        // The output collection of a multi-instance body around the call is the engine's to
        // fill: a child handing back its stale copy would erase the other items' results.
        if let (Some(body), Some(Kind::MultiInstance(mi))) = (
            el.scope,
            model
                .element(el.element)
                .scope
                .map(|s| &model.element(s).kind),
        ) && let Some(name) = &mi.output_collection
            && ctx.r().variable(body, name)?.is_some()
        {
            vars.remove(name);
        }
        vars
    } else {
        ctx.r().local_variables(el.key)?.into_iter().collect()
    };
    lifecycle::activated(ctx, el)?;
    instance::start_called(ctx, definition, start, vars, el)?;
    Ok(())
}

/// How many call activities started `instance` and its callers (0 for a top-level one).
fn depth(ctx: &Ctx<'_>, instance: u64) -> Result<usize, Error> {
    let mut depth = 0;
    let mut at = instance;
    while let Some(link) = ctx.r().caller(at)? {
        depth += 1;
        if depth >= MAX_DEPTH {
            break;
        }
        at = link.parent_instance;
    }
    Ok(depth)
}

/// The definition key the binding picks, or why there is none.
fn resolve(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    process_id: &str,
    binding: &CallBinding,
) -> Result<Result<u64, String>, Error> {
    let versions = ctx.r().versions(process_id)?;
    if versions.is_empty() {
        return Ok(Err(format!(
            "expected process with id '{process_id}' to be deployed, but it is not; deploy it, then resolve this incident"
        )));
    }
    Ok(match binding {
        CallBinding::Latest => Ok(versions[versions.len() - 1].1),
        CallBinding::Deployment => {
            let caller_id = ctx.model(el.definition)?.id.clone();
            let Some(caller) = ctx.r().process(el.definition)? else {
                return Err(Error::Corrupt(format!(
                    "process definition {} is missing",
                    el.definition
                )));
            };
            let mut found = None;
            for (_, key) in versions.iter().rev() {
                if let Some(p) = ctx.r().process(*key)?
                    && p.checksum == caller.checksum
                {
                    found = Some(*key);
                    break;
                }
            }
            found.ok_or_else(|| {
                format!(
                    "bindingType deployment: process '{process_id}' was not deployed together with '{caller_id}' (resource {}); deploy them in one file",
                    caller.resource
                )
            })
        }
        CallBinding::VersionTag(tag) => {
            let mut found = None;
            for (_, key) in versions.iter().rev() {
                if ctx.model(*key)?.version_tag.as_deref() == Some(tag.as_str()) {
                    found = Some(*key);
                    break;
                }
            }
            found.ok_or_else(|| {
                format!(
                    "no version of process '{process_id}' has the version tag '{tag}' (zeebe:versionTag)"
                )
            })
        }
    })
}

/// A process instance is completing: if a call activity started it, the link and the
/// variables it hands back (read now, before they are gone with it).
pub(crate) fn returning(
    ctx: &Ctx<'_>,
    root: &ElementInstance,
) -> Result<Option<(CallLink, Context)>, Error> {
    let Some(link) = ctx.r().caller(root.key)? else {
        return Ok(None);
    };
    let vars = ctx.r().local_variables(root.key)?.into_iter().collect();
    Ok(Some((link, vars)))
}

/// The child completed: its call activity completes with the child's variables.
pub(crate) fn returned(ctx: &mut Ctx<'_>, link: CallLink, vars: Context) -> Result<(), Error> {
    ctx.emit(Event::CallEnded(link))?;
    let Some(parent) = ctx.r().element(link.parent)? else {
        return Ok(());
    };
    if parent.state != ElementState::Activated {
        return Ok(());
    }
    let model = ctx.model(parent.definition)?;
    let m = model.element(parent.element);
    let Kind::CallActivity(call) = &m.kind else {
        return Ok(());
    };
    // Output mappings pick from the child's variables whether or not all of them propagate.
    let result = (call.propagate_child || !m.outputs.is_empty()).then_some(vars);
    lifecycle::complete(ctx, parent.key, result, Leave::All)
}

/// A process instance was terminated: if a call activity started it, the link goes (the call
/// activity is being terminated itself, or the instance was cancelled with it).
pub(crate) fn terminated(ctx: &mut Ctx<'_>, root: u64) -> Result<(), Error> {
    if let Some(link) = ctx.r().caller(root)? {
        ctx.emit(Event::CallEnded(link))?;
    }
    Ok(())
}

/// Where an error or escalation goes on after leaving process instance `root`: the call
/// activity that started it, if any.
pub(crate) fn caller_of(ctx: &Ctx<'_>, root: u64) -> Result<Option<u64>, Error> {
    Ok(ctx.r().caller(root)?.map(|l| l.parent))
}
