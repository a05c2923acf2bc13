//! An event subprocess: started by its start event's trigger (see `engine::event_subprocess`),
//! it runs that start event, which completes with what the trigger carried.

use super::{Behavior, Ctx, ElementInstance, Error, Process};
use crate::engine::context::Activation;
use crate::engine::lifecycle;
use crate::feel::Context;
use crate::model::Kind;

pub(super) struct EventSubProcess;

impl Behavior for EventSubProcess {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        payload: Option<Context>,
    ) -> Result<(), Error> {
        let Kind::EventSubProcess(sub) = &model.element(el.element).kind else {
            return Err(Error::Corrupt(format!(
                "{} is not an event subprocess",
                model.element(el.element).id
            )));
        };
        lifecycle::activated(ctx, el)?;
        ctx.queue.push_back(Activation {
            definition: el.definition,
            instance: el.instance,
            scope: el.key,
            element: sub.start,
            consumed: Vec::new(),
            joined: false,
            payload: Some(payload.unwrap_or_default()),
            compensating: None,
        });
        Ok(())
    }
}
