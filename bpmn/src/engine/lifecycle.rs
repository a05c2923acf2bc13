//! The lifecycle every element goes through, as Zeebe's engine writes it:
//!
//! ```text
//!  token ─► ACTIVATING ─(input mappings, boundary events)─► behaviour.activate ─► ACTIVATED
//!                                                                                  │
//!     SEQUENCE_FLOW_TAKEN ◄─ leave ◄─ COMPLETED ◄─(output mappings)─ COMPLETING ◄──┘
//!  terminate: TERMINATING ─► children terminated, job/timers/subscriptions closed ─► TERMINATED
//! ```
//!
//! Behaviours (one per element family, in `behavior/`) decide what happens between ACTIVATED and
//! COMPLETING; this module does the steps they share. A step that fails on the model's
//! expressions raises an incident and stops there; resolving the incident runs the step again.

use super::behavior;
use super::context::{Activation, Ctx};
use super::event::{ElementRef, Event, Lifecycle};
use super::records::{CompensationSub, ElementInstance, ElementState, IncidentKind, Repeat, Timer};
use super::variables;
use super::{Error, messages};
use crate::feel::Context;
use crate::model::{BoundaryTrigger, ElementIdx, FlowIdx, Kind, Process, TimerDef};

/// Which outgoing flows a completed element takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Leave {
    /// Every outgoing flow (an activity with several is an implicit parallel split).
    All,
    One(FlowIdx),
    /// These, in this order (an inclusive gateway's chosen flows).
    Some(Vec<FlowIdx>),
    /// None: the path ends here.
    Nothing,
    /// No flow: the token goes on at this link catch event of the same scope.
    Link(ElementIdx),
}

/// Activates an element for a token: ELEMENT_ACTIVATING, then the activation steps.
pub(crate) fn activate(ctx: &mut Ctx<'_>, a: Activation) -> Result<(), Error> {
    // The container may have ended while this token was queued (an interrupting event, a
    // terminate end event): the token goes with it.
    match ctx.r().element(a.scope)? {
        Some(scope) if scope.state == ElementState::Activated => {}
        _ => return Ok(()),
    }
    let key = ctx.new_key();
    let element = ElementInstance {
        compensating: a.compensating,
        ..ElementInstance::activating(
            key,
            a.instance,
            a.definition,
            a.element,
            Some(a.scope),
            ctx.now,
        )
    };
    ctx.emit(Event::ElementActivating {
        element,
        consumed: a.consumed,
        joined: a.joined,
    })?;
    run_activation(ctx, key, a.payload)
}

/// The activation steps after ACTIVATING; run again when an incident on them is resolved.
pub(crate) fn run_activation(
    ctx: &mut Ctx<'_>,
    key: u64,
    payload: Option<Context>,
) -> Result<(), Error> {
    let el = ctx.r().element_required(key)?;
    let model = ctx.model(el.definition)?;
    let m = model.element(el.element);
    if !m.inputs.is_empty()
        && let Err(msg) = variables::apply_inputs(ctx, key, el.instance, &m.inputs)?
    {
        return ctx.incident(key, IncidentKind::IoMapping, msg, None);
    }
    if !m.boundaries.is_empty() {
        close_owned(ctx, key)?;
        if let Err(msg) = open_boundaries(ctx, &el, &model)? {
            return ctx.incident(key, IncidentKind::Expression, msg, None);
        }
    }
    behavior::of(&m.kind).activate(ctx, &el, &model, payload)?;
    if waits_for_messages(&model, el.element) {
        messages::correlate_buffered(ctx, key)?;
    }
    Ok(())
}

/// Emits ELEMENT_ACTIVATED for an element that is activating.
pub(crate) fn activated(ctx: &mut Ctx<'_>, el: &ElementInstance) -> Result<(), Error> {
    ctx.emit(Event::Element {
        intent: Lifecycle::Activated,
        element: ElementRef::of(el),
        at: ctx.now,
    })
}

/// Whether this element (or its boundary events, or the events after it) opens message
/// subscriptions, so that buffered messages must be checked after it activates.
fn waits_for_messages(model: &Process, idx: ElementIdx) -> bool {
    let m = model.element(idx);
    let boundary_message = m.boundaries.iter().any(|b| {
        matches!(&model.element(*b).kind, Kind::Boundary(bd) if matches!(bd.trigger, BoundaryTrigger::Message(_)))
    });
    boundary_message
        || super::event_subprocess::waits_for_messages(model, idx)
        || matches!(
            m.kind,
            Kind::IntermediateCatch(crate::model::CatchTrigger::Message(_))
                | Kind::Task(crate::model::TaskKind::Receive { .. })
                | Kind::EventBasedGateway
        )
}

/// Opens the timers and message subscriptions of an activity's boundary events.
pub(crate) fn open_boundaries(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    model: &Process,
) -> Result<Result<(), String>, Error> {
    for b in &model.element(el.element).boundaries {
        let opened = open_boundary(ctx, el, *b, model)?;
        if opened.is_err() {
            return Ok(opened);
        }
    }
    Ok(Ok(()))
}

/// Opens the timer or subscription of one boundary event `b` of activity instance `el`.
pub(crate) fn open_boundary(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    b: ElementIdx,
    model: &Process,
) -> Result<Result<(), String>, Error> {
    let Kind::Boundary(boundary) = &model.element(b).kind else {
        return Ok(Ok(()));
    };
    Ok(match &boundary.trigger {
        BoundaryTrigger::Timer(def) => open_timer(ctx, el, b, def)?,
        BoundaryTrigger::Message(m) => messages::open_subscription(
            ctx,
            el,
            b,
            m,
            boundary.interrupting,
            el.scope.unwrap_or(el.key),
        )?,
        BoundaryTrigger::Signal(s) => {
            super::signals::open(ctx, el, b, s, el.scope.unwrap_or(el.key))?
        }
        BoundaryTrigger::Error(_)
        | BoundaryTrigger::Compensation(_)
        | BoundaryTrigger::Escalation(_)
        | BoundaryTrigger::Conditional(_) => Ok(()),
    })
}

/// Schedules a timer owned by `owner` for the timer event `element`.
pub(crate) fn open_timer(
    ctx: &mut Ctx<'_>,
    owner: &ElementInstance,
    element: ElementIdx,
    def: &TimerDef,
) -> Result<Result<(), String>, Error> {
    let value = match variables::eval(ctx, &def.expr, owner.key, None)? {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let schedule = match def.schedule_from(&value, ctx.now_ts()) {
        Ok(s) => s,
        Err(e) => return Ok(Err(format!("timer {}: {e}", def.kind.name()))),
    };
    let key = ctx.new_key();
    ctx.emit(Event::TimerCreated(Timer {
        key,
        due: schedule.due.as_millisecond(),
        owner: Some(owner.key),
        instance: Some(owner.instance),
        definition: owner.definition,
        element,
        repeat: schedule.repeat.map(|(remaining, interval)| Repeat {
            remaining,
            months: interval.months,
            nanos: interval.exact.as_nanos(),
        }),
    }))?;
    Ok(Ok(()))
}

/// Closes the message and signal subscriptions and cancels the timers an element instance
/// owns.
pub(crate) fn close_owned(ctx: &mut Ctx<'_>, key: u64) -> Result<(), Error> {
    for s in ctx.r().subscriptions_of(key)? {
        ctx.emit(Event::SubscriptionClosed {
            owner: s.owner,
            element: s.element,
        })?;
    }
    for t in ctx.r().timers_of(key)? {
        ctx.emit(Event::TimerCanceled { key: t })?;
    }
    super::signals::close_owned(ctx, key)
}

/// Completes an element: ELEMENT_COMPLETING, output mappings, ELEMENT_COMPLETED, then leaves it.
/// `result` is what the element produced (a job result, a message's variables).
pub(crate) fn complete(
    ctx: &mut Ctx<'_>,
    key: u64,
    result: Option<Context>,
    leave: Leave,
) -> Result<(), Error> {
    let el = ctx.r().element_required(key)?;
    ctx.emit(Event::Element {
        intent: Lifecycle::Completing,
        element: ElementRef::of(&el),
        at: ctx.now,
    })?;
    run_completion(ctx, key, result, leave)
}

/// The completion steps after COMPLETING; run again when an incident on them is resolved.
pub(crate) fn run_completion(
    ctx: &mut Ctx<'_>,
    key: u64,
    result: Option<Context>,
    leave: Leave,
) -> Result<(), Error> {
    let el = ctx.r().element_required(key)?;
    let model = ctx.model(el.definition)?;
    let m = model.element(el.element);
    let flow_scope = el.scope.unwrap_or(el.key);
    if !m.outputs.is_empty() {
        // With output mappings the result becomes local first, and only mapped values leave.
        if let Some(result) = result {
            for (name, value) in result {
                variables::set_local(ctx, key, el.instance, &name, value)?;
            }
        }
        if let Err(msg) =
            variables::apply_outputs(ctx, key, flow_scope, el.instance, &m.outputs, None)?
        {
            return ctx.incident(key, IncidentKind::IoMapping, msg, None);
        }
    } else if let (Some(result), Some(scope)) = (result, el.scope) {
        // As in Zeebe, a variable the element has locally (an input mapping) takes the value
        // and stays with the element; the rest goes out to the nearest scope that has it.
        let from = if el.has_variables { el.key } else { scope };
        variables::merge(ctx, from, el.instance, result)?;
    }
    if owns_events(&model, el.element) {
        close_owned(ctx, key)?;
    }
    if let (Some(scope), true) = (el.scope, m.is_activity()) {
        subscribe_compensation(ctx, &el, scope, &model)?;
    }
    // A child instance hands its variables to its call activity: read before they go.
    let returning = match el.scope {
        None => super::calls::returning(ctx, &el)?,
        Some(_) => None,
    };
    // The inner activity of a multi-instance body hands its result to the body first.
    let body = match (m.scope.map(|s| &model.element(s).kind), el.scope) {
        (Some(Kind::MultiInstance(mi)), Some(body)) => {
            match super::multi_instance::inner_completing(ctx, &el, body, mi)? {
                Some(done) => Some((mi, body, done)),
                None => return Ok(()),
            }
        }
        _ => None,
    };
    ctx.emit(Event::Element {
        intent: Lifecycle::Completed,
        element: ElementRef::of(&el),
        at: ctx.now,
    })?;
    if let Some(thrower) = el.compensating {
        return super::compensation::handler_ended(ctx, thrower);
    }
    let Some(scope) = el.scope else {
        messages::after_instance_ended(ctx, &el)?;
        return match returning {
            Some((link, vars)) => super::calls::returned(ctx, link, vars),
            None => Ok(()),
        };
    };
    if let Some((mi, body, done)) = body {
        return super::multi_instance::inner_completed(ctx, body, mi, done);
    }
    let took = match leave {
        Leave::All => {
            let flows = m.outgoing.clone();
            for f in &flows {
                take(ctx, &el, scope, *f, None)?;
            }
            !flows.is_empty()
        }
        Leave::One(f) => {
            take(ctx, &el, scope, f, None)?;
            true
        }
        Leave::Some(flows) => {
            for f in &flows {
                take(ctx, &el, scope, *f, None)?;
            }
            !flows.is_empty()
        }
        Leave::Nothing => false,
        Leave::Link(target) => {
            // At once, not queued: no flow carries the token, so nothing else would keep the
            // container from completing in between.
            activate(
                ctx,
                Activation {
                    definition: el.definition,
                    instance: el.instance,
                    scope,
                    element: target,
                    consumed: Vec::new(),
                    joined: false,
                    payload: None,
                    compensating: None,
                },
            )?;
            true
        }
    };
    if !took {
        path_ended(ctx, scope)?;
    }
    // Every token this element sent is placed now: an inclusive join of its container may have
    // nothing left to wait for (no store read where the container has none).
    match m.scope {
        Some(container) if super::inclusive::has_joins(&model, container) => {
            super::inclusive::recheck(ctx, scope)
        }
        _ => Ok(()),
    }
}

/// Whether an element instance can own subscriptions or timers (so completing must close them).
fn owns_events(model: &Process, idx: ElementIdx) -> bool {
    let m = model.element(idx);
    !m.boundaries.is_empty()
        || super::event_subprocess::waits(model, idx)
        || matches!(
            m.kind,
            Kind::IntermediateCatch(_)
                | Kind::Task(crate::model::TaskKind::Receive { .. })
                | Kind::EventBasedGateway
        )
}

/// A completed activity with a compensation boundary event can be compensated later.
fn subscribe_compensation(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    scope: u64,
    model: &Process,
) -> Result<(), Error> {
    for b in &model.element(el.element).boundaries {
        if let Kind::Boundary(bd) = &model.element(*b).kind
            && let BoundaryTrigger::Compensation(Some(handler)) = bd.trigger
        {
            let key = ctx.new_key();
            ctx.emit(Event::CompensationSubscribed(CompensationSub {
                key,
                scope,
                instance: el.instance,
                definition: el.definition,
                activity: el.element,
                boundary: *b,
                handler,
            }))?;
        }
    }
    Ok(())
}

/// Takes a sequence flow out of `from` (in container `scope`); the target activates when the
/// queue reaches it, a join once a token waits on every incoming flow.
pub(crate) fn take(
    ctx: &mut Ctx<'_>,
    from: &ElementInstance,
    scope: u64,
    flow: FlowIdx,
    payload: Option<Context>,
) -> Result<(), Error> {
    let model = ctx.model(from.definition)?;
    let target = model.flow(flow).target;
    let t = model.element(target);
    let join =
        matches!(t.kind, Kind::ParallelGateway | Kind::InclusiveGateway) && t.incoming.len() > 1;
    ctx.emit(Event::SequenceFlowTaken {
        scope,
        flow,
        instance: from.instance,
        definition: from.definition,
        join,
    })?;
    if join && matches!(t.kind, Kind::InclusiveGateway) {
        // Activated by `inclusive::recheck` once no other token can still arrive.
        return Ok(());
    }
    if join {
        for f in &t.incoming {
            if ctx.r().taken(scope, *f)? == 0 {
                return Ok(());
            }
        }
    }
    ctx.queue.push_back(Activation {
        definition: from.definition,
        instance: from.instance,
        scope,
        element: target,
        consumed: if join { t.incoming.clone() } else { vec![flow] },
        joined: join,
        payload,
        compensating: None,
    });
    Ok(())
}

/// A path in a container ended: the container completes once nothing is left in it.
pub(crate) fn path_ended(ctx: &mut Ctx<'_>, scope: u64) -> Result<(), Error> {
    let Some(s) = ctx.r().element(scope)? else {
        return Ok(());
    };
    if s.state == ElementState::Activated && s.active_children == 0 && s.active_flows == 0 {
        complete(ctx, scope, None, Leave::All)?;
    }
    Ok(())
}

/// Terminates an element instance and everything inside it, innermost first.
pub(crate) fn terminate(ctx: &mut Ctx<'_>, key: u64) -> Result<(), Error> {
    let el = ctx.r().element_required(key)?;
    if el.state == ElementState::Terminating {
        return Ok(());
    }
    ctx.emit(Event::Element {
        intent: Lifecycle::Terminating,
        element: ElementRef::of(&el),
        at: ctx.now,
    })?;
    for child in ctx.r().children(key)? {
        terminate(ctx, child)?;
    }
    if matches!(
        ctx.model(el.definition)?.element(el.element).kind,
        Kind::CallActivity(_)
    ) && let Some(child) = ctx.r().called(key)?
    {
        terminate(ctx, child)?;
    }
    if let Some(job) = el.job {
        ctx.emit(Event::JobCanceled { key: job })?;
    }
    close_owned(ctx, key)?;
    if let Some(incident) = el.incident {
        ctx.emit(Event::IncidentResolved { key: incident })?;
    }
    ctx.emit(Event::Element {
        intent: Lifecycle::Terminated,
        element: ElementRef::of(&el),
        at: ctx.now,
    })?;
    if let Some(thrower) = el.compensating {
        super::compensation::handler_ended(ctx, thrower)?;
    }
    if el.scope.is_none() {
        messages::after_instance_ended(ctx, &el)?;
        super::calls::terminated(ctx, el.key)?;
    }
    Ok(())
}

/// An event that waits on behalf of element instance `owner` fired: a boundary event of it, or
/// the start event of an event subprocess inside it.
pub(crate) fn trigger_attached(
    ctx: &mut Ctx<'_>,
    owner: u64,
    event: ElementIdx,
    model: &Process,
    payload: Option<Context>,
) -> Result<(), Error> {
    match &model.element(event).kind {
        Kind::StartEvent(_) => super::event_subprocess::trigger(ctx, owner, event, payload),
        _ => trigger_boundary(ctx, owner, event, model.interrupts(event), payload),
    }
}

/// A boundary event fires for the activity instance `activity`: an interrupting one terminates
/// the activity first; then the boundary event runs in the activity's container.
pub(crate) fn trigger_boundary(
    ctx: &mut Ctx<'_>,
    activity: u64,
    boundary: ElementIdx,
    interrupting: bool,
    payload: Option<Context>,
) -> Result<(), Error> {
    let el = ctx.r().element_required(activity)?;
    let Some(scope) = el.scope else { return Ok(()) };
    if interrupting {
        terminate(ctx, activity)?;
    }
    activate(
        ctx,
        Activation {
            definition: el.definition,
            instance: el.instance,
            scope,
            element: boundary,
            consumed: Vec::new(),
            joined: false,
            payload: Some(payload.unwrap_or_default()),
            compensating: None,
        },
    )
}
