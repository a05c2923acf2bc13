//! Exclusive gateways: the first outgoing flow (in model order) whose condition holds, else the
//! default flow; neither is an incident, resolved by fixing variables and retrying.

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
use crate::feel::Context;

pub(super) struct ExclusiveGateway;

impl Behavior for ExclusiveGateway {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        let Some(flows) = super::choose_flows(ctx, el, model, true)? else {
            return Ok(());
        };
        lifecycle::activated(ctx, el)?;
        lifecycle::complete(ctx, el.key, None, Leave::One(flows[0]))
    }
}
