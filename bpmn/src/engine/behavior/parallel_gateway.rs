//! Parallel gateways: a fork takes every outgoing flow; a join is activated only once a token
//! waits on each incoming flow (see `lifecycle::take`).

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
use crate::feel::Context;

pub(super) struct ParallelGateway;

impl Behavior for ParallelGateway {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        _: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        lifecycle::activated(ctx, el)?;
        lifecycle::complete(ctx, el.key, None, Leave::All)
    }
}
