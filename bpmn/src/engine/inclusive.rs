//! The inclusive join: a token that reaches an inclusive gateway with several incoming flows
//! waits there (in the join counters) until every incoming flow has a token, or until no
//! other token of the scope can still reach one of the incoming flows without one, as Zeebe
//! does. Checked whenever an element has placed its tokens.

use std::collections::HashSet;

use super::Error;
use super::context::{Activation, Ctx};
use super::records::ElementState;
use crate::model::{ElementIdx, FlowIdx, Kind, Process};

/// Activates the inclusive joins of the container instance `scope` that have tokens waiting
/// and nothing more to wait for.
pub(crate) fn recheck(ctx: &mut Ctx<'_>, scope: u64) -> Result<(), Error> {
    let Some(s) = ctx.r().element(scope)? else {
        return Ok(());
    };
    if s.state != ElementState::Activated || !s.has_joins {
        return Ok(());
    }
    let model = ctx.model(s.definition)?;
    let joins: Vec<ElementIdx> = model
        .element(s.element)
        .children
        .iter()
        .copied()
        .filter(|&c| is_join(&model, c) && matches!(model.element(c).kind, Kind::InclusiveGateway))
        .collect();
    if joins.is_empty() {
        return Ok(());
    }
    for gateway in joins {
        let queued = ctx
            .queue
            .iter()
            .any(|a| a.scope == scope && a.element == gateway && a.joined);
        if queued {
            continue;
        }
        let mut waiting = Vec::new();
        let mut empty = Vec::new();
        for f in &model.element(gateway).incoming {
            if ctx.r().taken(scope, *f)? > 0 {
                waiting.push(*f);
            } else {
                empty.push(*f);
            }
        }
        if waiting.is_empty() {
            continue;
        }
        if !empty.is_empty() && can_still_arrive(ctx, &model, scope, gateway, &empty)? {
            continue;
        }
        ctx.queue.push_back(Activation {
            definition: s.definition,
            instance: s.instance,
            scope,
            element: gateway,
            consumed: waiting,
            joined: true,
            payload: None,
            compensating: None,
        });
    }
    Ok(())
}

/// Whether the container `container` has an inclusive join among its elements.
pub(crate) fn has_joins(model: &Process, container: ElementIdx) -> bool {
    model
        .element(container)
        .children
        .iter()
        .any(|&c| is_join(model, c) && matches!(model.element(c).kind, Kind::InclusiveGateway))
}

fn is_join(model: &Process, idx: ElementIdx) -> bool {
    let e = model.element(idx);
    matches!(e.kind, Kind::ParallelGateway | Kind::InclusiveGateway) && e.incoming.len() > 1
}

/// Whether a token of `scope` (an active element, one queued to activate, or one waiting at
/// another join) has a path to one of `empty` that does not pass through `gateway`.
fn can_still_arrive(
    ctx: &mut Ctx<'_>,
    model: &Process,
    scope: u64,
    gateway: ElementIdx,
    empty: &[FlowIdx],
) -> Result<bool, Error> {
    let mut positions: Vec<ElementIdx> = Vec::new();
    for child in ctx.r().children(scope)? {
        positions.push(ctx.r().element_required(child)?.element);
    }
    positions.extend(
        ctx.queue
            .iter()
            .filter(|a| a.scope == scope)
            .map(|a| a.element),
    );
    let container = model.element(gateway).scope;
    for f in &model.flows {
        let target = f.target;
        if target != gateway
            && model.element(target).scope == container
            && is_join(model, target)
            && ctx.r().taken(scope, f.idx)? > 0
        {
            positions.push(target);
        }
    }
    Ok(positions.iter().any(|p| reaches(model, *p, gateway, empty)))
}

/// A walk along outgoing flows (and those of boundary events) from `from`, not through
/// `gateway`: does it take one of `empty`?
fn reaches(model: &Process, from: ElementIdx, gateway: ElementIdx, empty: &[FlowIdx]) -> bool {
    let mut seen = HashSet::from([from]);
    let mut todo = vec![from];
    while let Some(e) = todo.pop() {
        let el = model.element(e);
        let outs = el.outgoing.iter().chain(
            el.boundaries
                .iter()
                .flat_map(|b| model.element(*b).outgoing.iter()),
        );
        for f in outs {
            if empty.contains(f) {
                return true;
            }
            let t = model.flow(*f).target;
            if t != gateway && seen.insert(t) {
                todo.push(t);
            }
        }
        // A link throw event goes on at its catch event.
        if let Kind::IntermediateThrow(crate::model::ThrowResult::Link(target)) = &el.kind
            && seen.insert(*target)
        {
            todo.push(*target);
        }
    }
    false
}
