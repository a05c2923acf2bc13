//! Manual and undefined tasks: nothing to do, the token passes.

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
use crate::feel::Context;

pub(super) struct PassThrough;

impl Behavior for PassThrough {
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
