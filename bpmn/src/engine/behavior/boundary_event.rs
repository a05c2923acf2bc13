//! Boundary events run once their trigger fired (see `lifecycle::trigger_boundary`): they
//! complete at once with what triggered them and leave by their outgoing flows.

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
use crate::feel::Context;

pub(super) struct BoundaryEvent;

impl Behavior for BoundaryEvent {
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
