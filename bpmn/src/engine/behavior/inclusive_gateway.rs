//! Inclusive gateways: every outgoing flow (in model order) whose condition holds, else the
//! default flow; neither is an incident, resolved by fixing variables and retrying. As a join
//! it is activated by `inclusive::recheck` once no other token can still reach it.

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
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
        let Some(flows) = super::choose_flows(ctx, el, model, false)? else {
            return Ok(());
        };
        lifecycle::activated(ctx, el)?;
        lifecycle::complete(ctx, el.key, None, Leave::Some(flows))
    }
}
