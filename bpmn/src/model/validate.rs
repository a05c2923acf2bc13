//! Structural checks on a built process: the rules Zeebe applies at deployment (start events,
//! gateway conditions, boundary and compensation wiring), each failure a [`Problem`] that says
//! what to change.

use std::collections::HashSet;

use super::{
    BoundaryTrigger, CatchTrigger, ElementIdx, EndResult, Kind, Problem, ProblemKind, Process,
    StartTrigger, TaskKind, ThrowResult,
};

pub(crate) fn validate(p: &Process) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut problem =
        |kind, e: &super::Element, msg: String| out.push(Problem::new(kind, e.pos, &e.id, msg));

    for container in p.elements.iter().filter(|e| e.is_container()) {
        let none_starts: Vec<ElementIdx> = container
            .children
            .iter()
            .copied()
            .filter(|&c| matches!(p.element(c).kind, Kind::StartEvent(StartTrigger::None)))
            .collect();
        if container.idx == Process::ROOT {
            let any_start = container.children.iter().any(|&c| {
                matches!(
                    p.element(c).kind,
                    Kind::StartEvent(_)
                        | Kind::Task(TaskKind::Receive {
                            instantiate: true,
                            ..
                        })
                ) || p.element(c).tag == "startEvent"
            });
            if !any_start {
                problem(
                    ProblemKind::InvalidStructure,
                    container,
                    "process has no start event; add a start event (none, message or timer)".into(),
                );
            }
        } else if matches!(container.kind, Kind::SubProcess) && none_starts.is_empty() {
            problem(
                ProblemKind::InvalidStructure,
                container,
                "subprocess has no none start event; add one where its flow begins".into(),
            );
        }
        if none_starts.len() > 1 {
            let second = p.element(none_starts[1]);
            problem(
                ProblemKind::InvalidStructure,
                second,
                format!(
                    "{} has more than one none start event; keep one",
                    if container.idx == Process::ROOT {
                        "process"
                    } else {
                        "subprocess"
                    }
                ),
            );
        }
    }

    let mut start_messages = HashSet::new();
    for e in p.elements.iter().skip(1) {
        match &e.kind {
            Kind::StartEvent(trigger) => {
                if !e.incoming.is_empty() {
                    problem(
                        ProblemKind::InvalidStructure,
                        e,
                        "start event has incoming sequence flows; a start event only starts".into(),
                    );
                }
                if let StartTrigger::Message(m) = trigger
                    && e.scope == Some(Process::ROOT)
                    && m.name.is_constant()
                    && !start_messages.insert(m.name.source().to_owned())
                {
                    problem(
                        ProblemKind::InvalidStructure,
                        e,
                        format!(
                            "another message start event waits for message '{}'; names must differ",
                            m.name.source()
                        ),
                    );
                }
            }
            Kind::EndEvent(result) => {
                if !e.outgoing.is_empty() {
                    problem(
                        ProblemKind::InvalidStructure,
                        e,
                        "end event has outgoing sequence flows; an end event only ends".into(),
                    );
                }
                if let EndResult::Compensation(Some(target)) = result {
                    check_compensation_target(p, e, *target, &mut problem);
                }
            }
            Kind::IntermediateThrow(ThrowResult::Compensation(Some(target))) => {
                check_compensation_target(p, e, *target, &mut problem);
            }
            Kind::IntermediateThrow(ThrowResult::Link(_)) if !e.outgoing.is_empty() => {
                problem(
                    ProblemKind::InvalidStructure,
                    e,
                    "a link throw event has no outgoing sequence flow: the flow goes on at its link catch event".into(),
                );
            }
            Kind::Boundary(b) => {
                let host = p.element(b.attached_to);
                if host.scope != e.scope {
                    problem(
                        ProblemKind::InvalidStructure,
                        e,
                        "boundary event and its activity are in different (sub)processes".into(),
                    );
                }
                if !e.incoming.is_empty() {
                    problem(
                        ProblemKind::InvalidStructure,
                        e,
                        "boundary event has incoming sequence flows".into(),
                    );
                }
                match &b.trigger {
                    BoundaryTrigger::Compensation(handler) => {
                        if !e.outgoing.is_empty() {
                            problem(
                                ProblemKind::InvalidStructure,
                                e,
                                "compensation boundary event has outgoing sequence flows; connect its handler with an association instead".into(),
                            );
                        }
                        if let Some(h) = handler {
                            let handler = p.element(*h);
                            if !handler.for_compensation {
                                problem(
                                    ProblemKind::InvalidStructure,
                                    handler,
                                    "activity is a compensation handler but is not marked isForCompensation=\"true\"".into(),
                                );
                            }
                            if !handler.is_activity()
                                && !matches!(handler.kind, Kind::Unsupported(_))
                            {
                                problem(
                                    ProblemKind::InvalidStructure,
                                    handler,
                                    "a compensation handler must be a task or subprocess".into(),
                                );
                            }
                        }
                    }
                    _ if e.outgoing.is_empty() => {
                        problem(
                            ProblemKind::InvalidStructure,
                            e,
                            "boundary event has no outgoing sequence flow; connect where it leads"
                                .into(),
                        );
                    }
                    _ => {}
                }
            }
            Kind::ExclusiveGateway | Kind::InclusiveGateway => {
                let which = if matches!(e.kind, Kind::ExclusiveGateway) {
                    "exclusive"
                } else {
                    "inclusive"
                };
                if e.outgoing.is_empty() {
                    problem(
                        ProblemKind::InvalidStructure,
                        e,
                        format!("{which} gateway has no outgoing sequence flow"),
                    );
                }
                if e.outgoing.len() > 1 {
                    for f in &e.outgoing {
                        let flow = p.flow(*f);
                        if Some(*f) == e.default_flow {
                            if flow.condition.is_some() {
                                problem(
                                    ProblemKind::InvalidStructure,
                                    e,
                                    format!(
                                        "default flow '{}' has a condition; the default is taken when no condition holds, so remove it",
                                        flow.id
                                    ),
                                );
                            }
                        } else if flow.condition.is_none() {
                            problem(
                                ProblemKind::MissingCondition,
                                e,
                                format!(
                                    "{which} gateway: flow '{}' has no condition and is not the default; add a condition or mark it as the default flow",
                                    flow.id
                                ),
                            );
                        }
                    }
                }
            }
            Kind::EventBasedGateway => {
                if e.outgoing.len() < 2 {
                    problem(
                        ProblemKind::InvalidStructure,
                        e,
                        "event-based gateway needs at least two outgoing flows to events".into(),
                    );
                }
                let mut names = HashSet::new();
                for f in &e.outgoing {
                    let target = p.element(p.flow(*f).target);
                    match &target.kind {
                        Kind::IntermediateCatch(trigger) => {
                            if target.incoming.len() != 1 {
                                problem(
                                    ProblemKind::InvalidStructure,
                                    target,
                                    "an event after an event-based gateway must have only the gateway's flow coming in".into(),
                                );
                            }
                            if let CatchTrigger::Link(_) | CatchTrigger::Conditional(_) = trigger {
                                problem(
                                    ProblemKind::InvalidStructure,
                                    target,
                                    "only message and timer catch events can follow an event-based gateway".into(),
                                );
                            }
                            if let CatchTrigger::Message(m) = trigger
                                && m.name.is_constant()
                                && !names.insert(m.name.source().to_owned())
                            {
                                problem(
                                    ProblemKind::InvalidStructure,
                                    target,
                                    format!(
                                        "two events after the gateway wait for message '{}'",
                                        m.name.source()
                                    ),
                                );
                            }
                        }
                        Kind::Unsupported(_) => {}
                        _ => problem(
                            ProblemKind::InvalidStructure,
                            e,
                            format!(
                                "event-based gateway leads to '{}', which is not a message or timer catch event",
                                target.id
                            ),
                        ),
                    }
                }
            }
            _ => {}
        }
        if !matches!(
            e.kind,
            Kind::ExclusiveGateway | Kind::InclusiveGateway | Kind::Unsupported(_)
        ) {
            for f in &e.outgoing {
                let flow = p.flow(*f);
                if flow.condition.is_some() {
                    problem(
                        ProblemKind::InvalidStructure,
                        e,
                        format!(
                            "flow '{}' has a condition, but only flows out of exclusive and inclusive gateways are conditional; add a gateway",
                            flow.id
                        ),
                    );
                }
            }
        }
        // One escalation boundary per code on an activity, and one catch-all.
        let mut codes = HashSet::new();
        for b in &e.boundaries {
            let boundary = p.element(*b);
            if let Kind::Boundary(bd) = &boundary.kind
                && let BoundaryTrigger::Escalation(code) = &bd.trigger
                && !codes.insert(code.clone())
            {
                problem(
                    ProblemKind::InvalidStructure,
                    boundary,
                    match code {
                        Some(c) => format!("another escalation boundary event of this activity catches code '{c}'; keep one"),
                        None => "another escalation boundary event of this activity catches every escalation; keep one".into(),
                    },
                );
            }
        }
        if e.for_compensation && (!e.incoming.is_empty() || !e.outgoing.is_empty()) {
            problem(
                ProblemKind::InvalidStructure,
                e,
                "compensation handler has sequence flows; a handler is started by compensation only".into(),
            );
        }
    }
    out
}

fn check_compensation_target(
    p: &Process,
    thrower: &super::Element,
    target: ElementIdx,
    problem: &mut impl FnMut(ProblemKind, &super::Element, String),
) {
    let t = p.element(target);
    let has_boundary = t.boundaries.iter().any(|b| {
        matches!(&p.element(*b).kind, Kind::Boundary(bd) if matches!(bd.trigger, BoundaryTrigger::Compensation(_)))
    });
    if !has_boundary {
        problem(
            ProblemKind::InvalidStructure,
            thrower,
            format!(
                "compensation is thrown for '{}', which has no compensation boundary event",
                t.id
            ),
        );
    } else if t.scope != thrower.scope {
        problem(
            ProblemKind::InvalidStructure,
            thrower,
            format!(
                "compensation is thrown for '{}', which is in another (sub)process",
                t.id
            ),
        );
    }
}
