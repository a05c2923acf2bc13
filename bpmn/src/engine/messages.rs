//! Messages: publishing, buffering until the time to live ends, correlation to subscriptions
//! (at most once per process instance), message start events with one active instance per
//! correlation key, and messages the engine publishes itself.

use std::collections::BTreeSet;

use super::action::Action;
use super::behavior;
use super::command::Rejection;
use super::context::Ctx;
use super::event::Event;
use super::records::{
    ElementInstance, ElementState, IncidentKind, MessageRecord, Publication, Subscription,
};
use super::{Error, instance, lifecycle, variables};
use crate::feel::{Context, NoVariables};
use crate::model::{ElementIdx, Kind, MessagePublish, MessageRef, StartTrigger, TaskKind};

/// Opens a subscription for the message of `element` (a catch event, receive task, boundary
/// event, or event after a gateway), owned by `owner`; name and key are evaluated in `scope`.
pub(crate) fn open_subscription(
    ctx: &mut Ctx<'_>,
    owner: &ElementInstance,
    element: ElementIdx,
    m: &MessageRef,
    interrupting: bool,
    scope: u64,
) -> Result<Result<(), String>, Error> {
    let name = match variables::eval_string(ctx, &m.name, scope, "message name", false)? {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let correlation_key = match &m.correlation_key {
        Some(expr) => match variables::eval_string(ctx, expr, scope, "correlation key", true)? {
            Ok(k) => k,
            Err(e) => return Ok(Err(format!("failed to extract the correlation key: {e}"))),
        },
        None => String::new(),
    };
    ctx.emit(Event::SubscriptionOpened(Subscription {
        owner: owner.key,
        element,
        instance: owner.instance,
        definition: owner.definition,
        name,
        correlation_key,
        interrupting,
    }))?;
    Ok(Ok(()))
}

/// After an element opened subscriptions: correlates the oldest buffered message each one may
/// take (not yet correlated to this instance).
pub(crate) fn correlate_buffered(ctx: &mut Ctx<'_>, owner: u64) -> Result<(), Error> {
    for s in ctx.r().subscriptions_of(owner)? {
        match ctx.r().element(owner)? {
            Some(o) if o.state == ElementState::Activated => {}
            _ => return Ok(()),
        }
        if ctx.r().subscription(s.owner, s.element)?.is_none() {
            continue;
        }
        for m in ctx.r().messages_for(&s.name, &s.correlation_key)? {
            if ctx.r().correlated(m, s.instance)? {
                continue;
            }
            let Some(message) = ctx.r().message(m)? else {
                continue;
            };
            correlate(ctx, &s, message.key, message.variables, true)?;
            break;
        }
    }
    Ok(())
}

/// Delivers a message to one subscription: the catch event or receive task completes, the
/// event-based gateway takes that event's path, the boundary event fires.
pub(crate) fn correlate(
    ctx: &mut Ctx<'_>,
    s: &Subscription,
    message: u64,
    variables: Context,
    buffered: bool,
) -> Result<(), Error> {
    let Some(owner) = ctx.r().element(s.owner)? else {
        return Ok(());
    };
    if owner.state != ElementState::Activated {
        return Ok(());
    }
    ctx.emit(Event::MessageCorrelated {
        message,
        instance: s.instance,
        buffered,
    })?;
    let model = ctx.model(owner.definition)?;
    let kind = &model.element(owner.element).kind;
    if s.element == owner.element || matches!(kind, Kind::EventBasedGateway) {
        behavior::of(kind).trigger(ctx, &owner, &model, s.element, Some(variables))
    } else {
        lifecycle::trigger_attached(ctx, owner.key, s.element, &model, Some(variables))
    }
}

/// Publishes a message: every open subscription with its name and key gets it (once per process
/// instance), message start events may start instances, and it stays buffered for `ttl_ms`.
pub(crate) fn publish(
    ctx: &mut Ctx<'_>,
    name: &str,
    correlation_key: &str,
    variables: Context,
    ttl_ms: i64,
    message_id: Option<String>,
) -> Result<Result<u64, Rejection>, Error> {
    if name.is_empty() {
        return Ok(Err(Rejection::invalid("a message needs a name")));
    }
    if ttl_ms < 0 {
        return Ok(Err(Rejection::invalid(format!(
            "time to live is {ttl_ms} ms; it must be 0 or more"
        ))));
    }
    if let Some(id) = &message_id
        && ctx
            .r()
            .message_with_id(name, correlation_key, id)?
            .is_some()
    {
        return Ok(Err(Rejection::duplicate(format!(
            "a message '{name}' with correlation key '{correlation_key}' and id '{id}' is already buffered"
        ))));
    }
    let key = ctx.new_key();
    ctx.emit(Event::MessagePublished(MessageRecord {
        key,
        name: name.to_owned(),
        correlation_key: correlation_key.to_owned(),
        variables: variables.clone(),
        deadline: ctx.now.saturating_add(ttl_ms),
        message_id,
        published_at: ctx.now,
    }))?;
    let buffered = ttl_ms > 0;
    let mut reached = BTreeSet::new();
    for (owner, element) in ctx.r().subscriptions_for(name, correlation_key)? {
        // An earlier correlation may have closed this one (an event-based gateway's others).
        let Some(s) = ctx.r().subscription(owner, element)? else {
            continue;
        };
        if reached.insert(s.instance) {
            correlate(ctx, &s, key, variables.clone(), buffered)?;
        }
    }
    for (latest, latest_element) in ctx.r().start_subscriptions(name)? {
        let (definition, element) = chosen_version(ctx, latest, latest_element, correlation_key)?;
        let model = ctx.model(definition)?;
        if !correlation_key.is_empty()
            && ctx
                .r()
                .started_by_key(&model.id, correlation_key)?
                .is_some()
        {
            continue;
        }
        // Marked against the subscription's (latest) definition, whichever version starts:
        // a buffered message starts no second instance when this one ends.
        ctx.emit(Event::MessageCorrelated {
            message: key,
            instance: latest,
            buffered,
        })?;
        let start_key = (!correlation_key.is_empty()).then(|| correlation_key.to_owned());
        instance::start(ctx, definition, element, variables.clone(), start_key)?;
    }
    Ok(Ok(key))
}

/// The version a message start event starts: the latest, unless a rollout picks another one
/// that has the same start event.
fn chosen_version(
    ctx: &mut Ctx<'_>,
    latest: u64,
    element: ElementIdx,
    correlation_key: &str,
) -> Result<(u64, ElementIdx), Error> {
    let Some(choose) = ctx.options.start_version.clone() else {
        return Ok((latest, element));
    };
    let model = ctx.model(latest)?;
    let Some(version) = (choose.0)(&model.id, correlation_key) else {
        return Ok((latest, element));
    };
    let Some((_, definition)) = ctx
        .r()
        .versions(&model.id)?
        .into_iter()
        .find(|(v, _)| *v == version)
    else {
        return Ok((latest, element));
    };
    let start_id = &model.element(element).id;
    let chosen = ctx.model(definition)?;
    match chosen.element_by_id(start_id) {
        Some(e)
            if matches!(
                chosen.element(e).kind,
                Kind::StartEvent(StartTrigger::Message(_))
            ) =>
        {
            Ok((definition, e))
        }
        _ => Ok((latest, element)),
    }
}

/// When an instance started by a message with a correlation key ends, a buffered message with
/// that key may start the next instance of the (latest version of the) process.
pub(crate) fn after_instance_ended(ctx: &mut Ctx<'_>, root: &ElementInstance) -> Result<(), Error> {
    let Some(key) = &root.start_key else {
        return Ok(());
    };
    let model = ctx.model(root.definition)?;
    let Some(latest) = ctx.r().latest_version(&model.id)? else {
        return Ok(());
    };
    let latest_model = ctx.model(latest)?;
    for start in latest_model.triggered_starts().collect::<Vec<_>>() {
        let name_expr = match &latest_model.element(start).kind {
            Kind::StartEvent(StartTrigger::Message(m)) => &m.name,
            Kind::Task(TaskKind::Receive { message, .. }) => &message.name,
            _ => continue,
        };
        let Ok(evaluated) = name_expr.evaluate(&NoVariables, ctx.now_ts()) else {
            continue;
        };
        let Some(name) = evaluated.value.as_str().map(str::to_owned) else {
            continue;
        };
        for m in ctx.r().messages_for(&name, key)? {
            if ctx.r().correlated(m, latest)? {
                continue;
            }
            let Some(message) = ctx.r().message(m)? else {
                continue;
            };
            ctx.emit(Event::MessageCorrelated {
                message: m,
                instance: latest,
                buffered: true,
            })?;
            instance::start(ctx, latest, start, message.variables, Some(key.clone()))?;
            return Ok(());
        }
    }
    Ok(())
}

/// A message throw event without a job: the engine publishes the message (through the
/// runtime, which acknowledges it). Returns false when an incident stopped it.
pub(crate) fn publish_from_model(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    p: &MessagePublish,
) -> Result<bool, Error> {
    let name = match variables::eval_string(ctx, &p.name, el.key, "message name", false)? {
        Ok(n) => n,
        Err(msg) => {
            ctx.incident(el.key, IncidentKind::Expression, msg, None)?;
            return Ok(false);
        }
    };
    let correlation_key = match &p.correlation_key {
        Some(expr) => match variables::eval_string(ctx, expr, el.key, "correlation key", true)? {
            Ok(k) => k,
            Err(msg) => {
                ctx.incident(el.key, IncidentKind::Expression, msg, None)?;
                return Ok(false);
            }
        },
        None => String::new(),
    };
    let ttl_ms = match &p.time_to_live {
        None => ctx.options.publish_ttl_ms,
        Some(expr) => match variables::eval(ctx, expr, el.key, None)? {
            Ok(crate::feel::Value::Duration(d)) => {
                d.as_millis().clamp(0, i128::from(i64::MAX)) as i64
            }
            Ok(other) => {
                let msg = format!(
                    "expected the time to live to be a duration, but it was {}",
                    other.type_name()
                );
                ctx.incident(el.key, IncidentKind::Expression, msg, None)?;
                return Ok(false);
            }
            Err(msg) => {
                ctx.incident(el.key, IncidentKind::Expression, msg, None)?;
                return Ok(false);
            }
        },
    };
    let model = ctx.model(el.definition)?;
    // With input mappings the message carries exactly the mapped variables; else all it sees.
    let payload = if model.element(el.element).inputs.is_empty() {
        variables::visible(ctx.r(), el.key)?
    } else {
        ctx.r().local_variables(el.key)?.into_iter().collect()
    };
    let key = ctx.new_key();
    let publication = Publication {
        key,
        name,
        correlation_key,
        variables: payload,
        ttl_ms,
        message_id: format!("flowmesh-{key}"),
        instance: el.instance,
        element_instance: el.key,
    };
    ctx.emit(Event::PublishRequested(publication.clone()))?;
    ctx.actions.push(Action::Publish(publication));
    Ok(true)
}

/// Drops buffered messages whose time to live has ended.
pub(crate) fn expire(ctx: &mut Ctx<'_>) -> Result<(), Error> {
    for key in ctx.r().messages_expired(ctx.now)? {
        ctx.emit(Event::MessageExpired { key })?;
    }
    Ok(())
}
