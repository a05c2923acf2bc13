//! Start events pass straight through; a message start event completes with the message's
//! variables (already set on the process when the instance was created).

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
use crate::feel::Context;

pub(super) struct StartEvent;

impl Behavior for StartEvent {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        _: &Process,
        payload: Option<Context>,
    ) -> Result<(), Error> {
        lifecycle::activated(ctx, el)?;
        lifecycle::complete(ctx, el.key, payload, Leave::All)
    }
}
