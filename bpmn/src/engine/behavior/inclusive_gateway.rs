//! Inclusive gateways: every outgoing flow (in model order) whose condition holds, else the
//! default flow; neither is an incident, resolved by fixing variables and retrying. As a join
//! it is activated by `inclusive::recheck` once no other token can still reach it.

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
use crate::engine::records::IncidentKind;
use crate::engine::variables;
use crate::feel::Context;

pub(super) struct InclusiveGateway;

impl Behavior for InclusiveGateway {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        let m = model.element(el.element);
        let mut chosen = Vec::new();
        if m.outgoing.len() == 1 && model.flow(m.outgoing[0]).condition.is_none() {
            chosen.push(m.outgoing[0]);
        } else {
            for f in &m.outgoing {
                if Some(*f) == m.default_flow {
                    continue;
                }
                let Some(cond) = &model.flow(*f).condition else {
                    continue;
                };
                match variables::eval_bool(ctx, cond, el.key)? {
                    Ok(true) => chosen.push(*f),
                    Ok(false) => {}
                    Err(msg) => return ctx.incident(el.key, IncidentKind::Condition, msg, None),
                }
            }
        }
        if chosen.is_empty() {
            let Some(default) = m.default_flow else {
                let conditions: Vec<_> = m
                    .outgoing
                    .iter()
                    .filter_map(|f| model.flow(*f).condition.as_ref())
                    .collect();
                let msg =
                    "expected at least one condition to evaluate to true, or to have a default flow"
                        .to_owned();
                let msg = variables::explain(ctx, &conditions, el.key, msg)?;
                return ctx.incident(el.key, IncidentKind::Condition, msg, None);
            };
            chosen.push(default);
        }
        lifecycle::activated(ctx, el)?;
        lifecycle::complete(ctx, el.key, None, Leave::Some(chosen))
    }

    /// A condition that failed is evaluated again once the incident is resolved.
    fn resume(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
    ) -> Result<(), Error> {
        self.activate(ctx, el, model, None)
    }
}
