//! The body of a multi-instance activity: runs its inner activity once per item (see
//! `engine::multi_instance`).

use super::{Behavior, Ctx, ElementInstance, Error, Process};
use crate::engine::multi_instance;
use crate::feel::Context;
use crate::model::{Kind, MultiInstance};

pub(super) struct MultiInstanceBody;

fn loop_of<'m>(model: &'m Process, el: &ElementInstance) -> Result<&'m MultiInstance, Error> {
    match &model.element(el.element).kind {
        Kind::MultiInstance(mi) => Ok(mi),
        _ => Err(Error::Corrupt(format!(
            "element {} is not a multi-instance body",
            model.element(el.element).id
        ))),
    }
}

impl Behavior for MultiInstanceBody {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        multi_instance::activate(ctx, el, loop_of(model, el)?)
    }

    fn resume(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
    ) -> Result<(), Error> {
        multi_instance::resume(ctx, el, loop_of(model, el)?)
    }
}
