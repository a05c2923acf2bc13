//! Call activities: start a child process instance and wait for it (see `engine::calls`).

use super::{Behavior, Ctx, ElementInstance, Error, Process};
use crate::engine::calls;
use crate::feel::Context;
use crate::model::Kind;

pub(super) struct CallActivity;

impl Behavior for CallActivity {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        let Kind::CallActivity(call) = &model.element(el.element).kind else {
            return Err(Error::Corrupt(format!(
                "{} is not a call activity",
                model.element(el.element).id
            )));
        };
        calls::call(ctx, el, model, call)
    }
}
