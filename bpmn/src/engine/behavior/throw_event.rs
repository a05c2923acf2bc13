//! Intermediate throw events: none (passes), message (a job, or a message the engine publishes),
//! compensation (waits until the compensation handlers are done), escalation (thrown to the
//! nearest catching boundary event, then on unless that interrupted), link (goes on at the
//! link catch event of its name) and signal (broadcast mesh-wide).

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, create_job, lifecycle};
use crate::engine::escalations;
use crate::feel::Context;
use crate::model::{Kind, MessageThrow, ThrowResult};

pub(super) struct ThrowEvent;

impl Behavior for ThrowEvent {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        let Kind::IntermediateThrow(result) = &model.element(el.element).kind else {
            return Err(Error::Corrupt(
                "throw behaviour on another element".to_owned(),
            ));
        };
        match result {
            ThrowResult::None => {
                lifecycle::activated(ctx, el)?;
                lifecycle::complete(ctx, el.key, None, Leave::All)
            }
            ThrowResult::Message(MessageThrow::Job(def)) => create_job(ctx, el, model, def),
            ThrowResult::Message(MessageThrow::Publish(p)) => {
                super::publish_and_complete(ctx, el, p, Leave::All)
            }
            ThrowResult::Compensation(target) => super::compensate(ctx, el, *target, Leave::All),
            ThrowResult::Escalation(_) => {
                lifecycle::activated(ctx, el)?;
                self.resume(ctx, el, model)
            }
            ThrowResult::Link(target) => {
                lifecycle::activated(ctx, el)?;
                lifecycle::complete(ctx, el.key, None, Leave::Link(*target))
            }
            ThrowResult::Signal(s) => super::broadcast_and_complete(ctx, el, s, Leave::All),
        }
    }

    /// Escalation throw events throw (again, after an incident on the code) their escalation.
    fn resume(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
    ) -> Result<(), Error> {
        let Kind::IntermediateThrow(ThrowResult::Escalation(thrown)) =
            &model.element(el.element).kind
        else {
            return Ok(());
        };
        escalations::throw_and_go_on(ctx, el, thrown, Leave::All)
    }
}
